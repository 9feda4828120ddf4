"""``python -m nyx_sessions inspect`` on a real Redis, and the stores' ``scan``."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.__main__ import main
from nyx_sessions.cli.output import format_duration, print_table, time_left, to_jsonable
from nyx_sessions.end import SessionEndData
from nyx_sessions.stores._redis_keys import KeyLayout
from nyx_sessions.stores.base import InspectableStore, SessionRecord, SessionStore
from nyx_sessions.stores.memory import MemoryStore
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import OfflineDiscord
from tests.sessions import Counter

from .conftest import make_client
from .test_store_contract import LEASE, make_record

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .redis_server import RedisServer

WHEN = dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.UTC)


async def seed(
    client: Redis, *, prefix: str = "nyx", result: Any = None
) -> dict[str, SessionRecord]:
    """Three committed sessions, as a bot would leave them: overdue, due in 2 min, never."""
    store = RedisStore(client, prefix=prefix)
    now = time.time()
    specs = [
        ("s-soon", "counter", now + 120.0, now - 30.0),
        ("s-late", "counter", now - 5.0, now - 600.0),
        ("s-poll", "poll", None, now - 7200.0),
    ]
    records: dict[str, SessionRecord] = {}
    for session_id, session_type, deadline, created_at in specs:
        record = SessionRecord(
            session_id=session_id,
            session_type=session_type,
            owner_id=42,
            guild_id=7,
            channel_id=8,
            data={"count": 3, "when": WHEN, "pair": (1, 2)},
            created_at=created_at,
            ttl=None if deadline is None else 60.0,
            deadline=deadline,
            result=result,
        )
        await store.create(record, lease_owner="seed", lease=LEASE)
        await store.commit(record, lease_owner="seed", release=True)
        records[session_id] = record
    return records


async def inspect(url: str, *argv: str) -> int:
    """Run the command line in-process (it runs its own event loop, so in a thread)."""
    return await asyncio.to_thread(main, ["inspect", "--redis", url, *argv])


@pytest.fixture
async def url(redis_server: RedisServer, redis_client: Redis) -> str:
    """The URL of an empty, running Redis."""
    return redis_server.url


def cells(line: str) -> list[str]:
    """The cells of a plain table row: columns are at least two spaces apart."""
    return re.split(r" {2,}", line.strip())


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


# -- list, counts, show --------------------------------------------------------------------


@pytest.mark.redis
async def test_list_is_a_table_sorted_by_time_left(
    url: str, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(redis_client)
    assert await inspect(url) == 0  # list is the default action
    default = capsys.readouterr().out
    assert await inspect(url, "list") == 0
    out = capsys.readouterr().out
    assert out == default
    assert "\x1b[" not in out  # piped: plain text
    header, late, soon, poll = (cells(line) for line in out.splitlines())
    assert header == ["ID", "TYPE", "OWNER", "AGE", "TIME LEFT", "REVISION"]
    # Seconds may tick between the seeding and the listing.
    assert late[:3] + late[4:] == ["s-late", "counter", "42", "overdue", "2"]
    assert late[3] in ("10m 0s", "10m 1s", "10m 2s")
    assert soon[:3] + soon[5:] == ["s-soon", "counter", "42", "2"]
    assert soon[3] in ("30s", "31s", "32s") and soon[4] in ("1m 58s", "1m 59s", "2m 0s")
    assert poll == ["s-poll", "poll", "42", "2h 0m", "none", "2"]


@pytest.mark.redis
async def test_list_filters_by_type_and_prints_json(
    url: str, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    records = await seed(redis_client)
    assert await inspect(url, "list", "--type", "poll") == 0
    out = capsys.readouterr().out
    assert "s-poll" in out and "s-soon" not in out
    assert await inspect(url, "--json", "list", "--type", "counter") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["session_id"] for row in rows] == ["s-late", "s-soon"]
    assert rows[0]["time_left_seconds"] < 0 < rows[1]["time_left_seconds"]
    assert rows[1]["deadline"] == records["s-soon"].deadline
    assert await inspect(url, "list", "--type", "nothing") == 0
    assert capsys.readouterr().out == "No live sessions of type 'nothing'.\n"
    assert await inspect(url, "list", "--limit", "1", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


@pytest.mark.redis
async def test_counts_per_type_and_total(
    url: str, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(redis_client)
    assert await inspect(url, "counts") == 0
    out = capsys.readouterr().out
    assert [cells(line) for line in out.splitlines()] == [
        ["TYPE", "SESSIONS"],
        ["counter", "2"],
        ["poll", "1"],
        ["total", "3"],
    ]
    assert await inspect(url, "counts", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "by_type": {"counter": 2, "poll": 1},
        "total": 3,
    }


@pytest.mark.redis
async def test_show_prints_every_field_with_reprs(
    url: str, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    records = await seed(redis_client, result={"votes": (1, 2)})
    assert await inspect(url, "show", "s-soon") == 0
    out = capsys.readouterr().out
    assert out.startswith("Session s-soon\n")
    names = [line.split()[0] for line in out.splitlines()[1:] if not line.startswith(" ")]
    assert names == [
        "session_id",
        "session_type",
        "owner_id",
        "guild_id",
        "channel_id",
        "message_id",
        "data",
        "data_version",
        "created_at",
        "ttl",
        "deadline",
        "hard_deadline",
        "revision",
        "result",
        "recent",
    ]
    assert repr(WHEN) in out  # datetimes as their repr
    assert "'pair': (1, 2)" in out
    assert re.search(r"deadline +[0-9.]+ \(\d{4}-\d\d-\d\d [0-9:]+ UTC, in (1m 5\ds|2m 0s)\)", out)
    assert "result         {'votes': (1, 2)}" in out

    assert await inspect(url, "show", "s-late", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    expected = records["s-late"]
    assert shown["session_id"] == "s-late"
    assert shown["data"] == {"count": 3, "when": repr(WHEN), "pair": "(1, 2)"}
    assert shown["deadline"] == expected.deadline
    assert shown["revision"] == 2
    assert shown["time_left_seconds"] < 0


@pytest.mark.redis
async def test_other_prefixes_are_separate(
    url: str, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(redis_client, prefix="otherbot")
    assert await inspect(url, "counts", "--json") == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0
    # The connection options also go after the action.
    assert (
        await asyncio.to_thread(
            main, ["inspect", "counts", "--json", "--redis", url, "--prefix", "otherbot"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["total"] == 3


# -- end -------------------------------------------------------------------------------------


@pytest.mark.redis
async def test_end_removes_the_record_and_publishes_the_end(
    url: str,
    redis_server: RedisServer,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(redis_client, result=5)
    listener = RedisStore(make_client(redis_server))
    heard: asyncio.Future[SessionEndData] = asyncio.get_running_loop().create_future()
    listener.on_end(lambda end: None if heard.done() else heard.set_result(end))
    try:
        await listener.open()
        code = await inspect(url, "end", "s-soon", "--code", "expired", "--reason", "stuck")
        out = capsys.readouterr().out
        assert code == 0
        assert out.startswith("Ended session s-soon (counter, owner 42) with code expired.\n")
        assert "end() hook did NOT run" in out
        end = await asyncio.wait_for(heard, 5)
        assert end == SessionEndData("s-soon", EndCode.EXPIRED, "stuck", 5)
        assert await listener.get("s-soon") is None
        assert await listener.count_by_type() == {"counter": 1, "poll": 1}
    finally:
        await listener.aclose()
        await listener._client.aclose()

    assert await inspect(url, "end", "s-poll", "--json") == 0
    ended = json.loads(capsys.readouterr().out)
    assert ended["code"] == "cancelled" and ended["end_hook_ran"] is False
    assert await inspect(url, "end", "s-poll") == 1  # gone now


class Watched(Counter):
    """The contract's counter, with a stable type and a record of its end() runs."""

    session_type = "tests.cli.watched"
    ttl = 300
    ends: ClassVar[list[str]] = []

    async def end(self) -> None:
        Watched.ends.append(self.id)


@pytest.mark.redis
async def test_a_bot_process_resolves_the_end_promise_without_the_hook(
    url: str, redis_server: RedisServer, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    Watched.ends = []
    client = make_client(redis_server)
    async with OfflineDiscord() as offline:
        manager = SessionManager(
            offline.client, store=RedisStore(client), sessions=[Watched], poll_interval=0.05
        )
        try:
            await manager.open()
            alice = offline.add_member("alice")
            command = await offline.slash_command(alice, "counter", wait=False)
            session = Watched(command.interaction)
            assert await manager.start(session)
            await command.wait_answered()
            message = offline.messages[-1]
            await offline.click(alice, message, label="+1")

            assert await inspect(url, "end", session.id, "--reason", "by admin") == 0
            assert "did NOT run" in capsys.readouterr().out
            end = await asyncio.wait_for(session.end_promise, 5)
            assert (end.code, end.reason, end.result) == (EndCode.CANCELLED, "by admin", None)
            assert Watched.ends == []  # the hook did not run: no process ran it
            assert manager.get(session.id) is None
            click = await offline.click(alice, message, label="+1")
            assert click.ephemeral
            assert click.message is not None and "expired" in click.message.content
        finally:
            await manager.aclose()
            await manager.store.aclose()
            await client.aclose()


@pytest.mark.redis
async def test_end_of_a_busy_session_gives_up_after_wait(
    url: str, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(redis_client)
    store = RedisStore(redis_client)
    assert await store.acquire("s-soon", lease_owner="bot", lease=LEASE, wait=0) is not None
    assert await inspect(url, "end", "s-soon", "--wait", "0.2") == 4
    assert "busy" in capsys.readouterr().err
    assert await store.get("s-soon") is not None


# -- failures and exit codes -------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("action", ["show", "end"])
async def test_an_unknown_session_exits_1(
    url: str, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await inspect(url, action, "nope") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "python -m nyx_sessions inspect: no session 'nope': it ended, expired or never existed\n"
    )


async def test_an_unreachable_redis_exits_3_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = closed_port_url().replace("redis://", "redis://:hunter2@")
    assert await inspect(url, "counts") == 3
    err = capsys.readouterr().err
    assert err.startswith("python -m nyx_sessions inspect: cannot reach Redis at redis://:***@")
    assert err.count("\n") == 1 and "hunter2" not in err


def test_without_redis_exits_2_and_explains(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m nyx_sessions inspect: no --redis URL given.")
    assert "MemoryStore" in err and "await manager.active()" in err and "manager.get(" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "--redis", "redis://x", "end", "s1", "--code", "error"],
        ["inspect", "--redis", "redis://x", "show"],
        ["inspect", "--redis", "redis://x", "list", "--limit", "0"],
        ["inspect", "--redis", "redis://x", "explode"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--redis", "mysql://x"], "invalid --redis or --prefix"),
        (["--redis", "redis://127.0.0.1:1/0", "--prefix", "a{b}"], "invalid key prefix"),
    ],
)
def test_bad_urls_and_prefixes_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", *argv, "counts"]) == 2
    assert message in capsys.readouterr().err


def test_demo_is_still_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    import nyx_sessions.demo

    monkeypatch.setattr(nyx_sessions.demo, "main", lambda: 0)
    assert main(["demo"]) == 0


@pytest.mark.redis
async def test_a_real_process_prints_plain_text_and_exit_codes(
    url: str, redis_client: Redis
) -> None:
    await seed(redis_client)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nyx_sessions", "inspect", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    counts = await asyncio.to_thread(run, "--redis", url, "counts")
    assert (counts.returncode, counts.stderr) == (0, "")
    assert (
        counts.stdout
        == "TYPE     SESSIONS\ncounter         2\npoll            1\ntotal           3\n"
    )
    down = await asyncio.to_thread(run, "--redis", closed_port_url(), "counts")
    assert down.returncode == 3
    assert down.stdout == "" and "Traceback" not in down.stderr
    assert down.stderr.count("\n") == 1


# -- output ----------------------------------------------------------------------------------


def test_durations_and_time_left() -> None:
    assert [format_duration(s) for s in (0, 59.9, 60, 3599, 3600, 86_399, 90_000)] == [
        "0s",
        "59s",
        "1m 0s",
        "59m 59s",
        "1h 0m",
        "23h 59m",
        "1d 1h",
    ]
    assert time_left(None, 100.0) == "none"
    assert time_left(100.0, 100.0) == "overdue"
    assert time_left(190.0, 100.0) == "1m 30s"


def test_json_keeps_json_types_and_reprs_the_rest() -> None:
    value = {"a": [1, 2.5, None, True], "t": (1,), 3: {1}, "x": float("inf"), "d": WHEN}
    assert to_jsonable(value) == {
        "a": [1, 2.5, None, True],
        "t": "(1,)",
        "3": "{1}",
        "x": "inf",
        "d": repr(WHEN),
    }


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tables_use_rich_on_a_terminal_and_plain_text_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def table_on(out: io.StringIO) -> str:
        print_table(out, ("id", "type"), [["s1", "[red]x"]], caption="1 session")
        return re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())

    monkeypatch.setenv("COLUMNS", "100")
    shown = table_on(Terminal())
    assert "┃ id" in shown and "│ s1 │ [red]x │" in shown and "1 session" in shown  # no markup
    plain = "ID  TYPE\ns1  [red]x\n"
    assert table_on(io.StringIO()) == plain  # piped
    monkeypatch.setenv("COLUMNS", "12")
    assert table_on(Terminal()) == plain  # too narrow: rich would cut the ids
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setitem(sys.modules, "rich.console", None)  # as if rich were not installed
    assert table_on(Terminal()) == plain


# -- the stores' scan --------------------------------------------------------------------------


async def test_scan_lists_records_by_type_and_limit(store: SessionStore) -> None:
    assert isinstance(store, InspectableStore)
    for index in range(5):
        record = make_record(f"s{index}", session_type="a" if index < 3 else "b")
        await store.create(record, lease_owner="P", lease=LEASE)
        await store.commit(record, lease_owner="P", release=True)

    every = [record async for record in store.scan()]
    assert sorted(record.session_id for record in every) == ["s0", "s1", "s2", "s3", "s4"]
    assert {record.revision for record in every} == {2}
    only_b = [record.session_id async for record in store.scan(session_type="b")]
    assert sorted(only_b) == ["s3", "s4"]
    assert len([record async for record in store.scan(limit=4)]) == 4
    assert [record async for record in store.scan(limit=0)] == []
    assert [record async for record in store.scan(session_type="none")] == []
    with pytest.raises(ValueError, match="limit"):
        [record async for record in store.scan(limit=-1)]

    # Read-only: no lease was taken, the removed are not listed.
    assert await store.acquire("s0", lease_owner="Q", lease=LEASE, wait=0) is not None
    await store.remove("s1")
    assert "s1" not in [record.session_id async for record in store.scan()]


@pytest.mark.redis
async def test_redis_scan_skips_unreadable_records_and_leaves_them(
    redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(redis_client)
    for session_id in ("good", "bad"):
        await store.create(make_record(session_id), lease_owner="P", lease=LEASE)
    await redis_client.hset(KeyLayout("nyx", 16).session("bad").rec, "body", b"\x93garbage")
    with caplog.at_level("WARNING", "nyx_sessions.stores.redis"):
        listed = [record.session_id async for record in store.scan()]
    assert listed == ["good"]
    assert "bad: record skipped by scan" in caplog.text
    bad = KeyLayout("nyx", 16).session("bad").rec
    assert await redis_client.hget(bad, "body") == b"\x93garbage"  # not moved


async def test_memory_scan_reads_a_snapshot() -> None:
    store = MemoryStore()
    for index in range(3):
        await store.create(make_record(f"s{index}"), lease_owner="P", lease=LEASE)
    seen = []
    async for record in store.scan():
        seen.append(record.session_id)
        await store.remove("s2")  # changes during the scan do not break it
    assert seen == ["s0", "s1", "s2"]
