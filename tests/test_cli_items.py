"""The command line's small promises: plain help, JSON that is JSON, a prefix that is named."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from nyx_sessions.__main__ import main
from nyx_sessions.stores.base import SessionRecord

LEASE = 30.0


async def inspect(url: str, *argv: str) -> int:
    """Run the command line in-process (it runs its own event loop, so in a thread)."""
    return await asyncio.to_thread(main, ["inspect", "--redis", url, *argv])


async def seed(url: str, *, recent: tuple[int, ...]) -> None:
    from nyx_sessions.stores.redis import RedisStore

    store = RedisStore.from_url(url)
    try:
        record = SessionRecord(
            session_id="s-1",
            session_type="counter",
            owner_id=42,
            guild_id=7,
            channel_id=8,
            data={"count": 1},
            created_at=time.time(),
            ttl=60.0,
            deadline=time.time() + 60.0,
        )
        await store.create(record, lease_owner="seed", lease=LEASE)
        record.recent = recent
        await store.commit(record, lease_owner="seed", release=True)
    finally:
        await store.aclose()


def test_top_level_help_has_no_markup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out
    assert "inspect a RedisStore's sessions" in out


async def test_show_json_writes_recent_as_an_array(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(redis_url, recent=(11, 12))
    assert await inspect(redis_url, "show", "s-1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["recent"] == [11, 12]


async def test_a_prefix_with_nothing_under_it_is_named(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(redis_url, recent=())
    assert await inspect(redis_url, "--prefix", "other", "counts") == 0
    captured = capsys.readouterr()
    assert "no sessions found under the prefix 'other'" in captured.err
    assert await inspect(redis_url, "--prefix", "other", "list") == 0
    assert "under the prefix 'other'" in capsys.readouterr().err
    assert await inspect(redis_url, "list") == 0
    captured = capsys.readouterr()
    assert "s-1" in captured.out
    assert captured.err == ""
    assert await inspect(redis_url, "list", "--type", "poll") == 0
    captured = capsys.readouterr()
    assert captured.out == "No live sessions of type 'poll'.\n"
    assert captured.err == ""  # the prefix holds sessions, just none of that type
