"""Three stateless workers behind HAProxy, sessions in one redis-server.

The workers are ``python -m nyx_sessions serve`` processes; their REST calls go to the
offline Discord of this process, which POSTs signed interactions to the balancer and
records every answer. One worker is SIGKILLed in the middle of a stream of clicks.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from nyx_sessions.testing import InteractionResult, OfflineMessage, OfflineUser
from nyx_sessions.testing.http import HttpOfflineDiscord

from ..stores.redis_server import RedisServer
from .cluster import Balancer, Worker, free_port

pytestmark = pytest.mark.redis

CALLBACK = "/interactions/{webhook_id}/{webhook_token}/callback"
TARGET = "tests.http.worker_bot:create_bot"
LONG, SHORT, CLICKS = 4, 2, 20


def require(binary: str, hint: str) -> str:
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin")
    if found is None:
        reason = f"{binary} is not installed ({hint})"
        if os.environ.get("NYX_REQUIRE_REDIS") or os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(require("redis-server", "run `make redis-server`"))
    server.start()
    try:
        yield server
    finally:
        server.close()


def answers(offline: HttpOfflineDiscord, result: InteractionResult) -> list[int]:
    prefix = f"/interactions/{result.id}/"
    return [r.status for r in offline.requests if r.route == CALLBACK and r.path.startswith(prefix)]


def content_of(result: InteractionResult) -> str:
    assert result.response is not None and result.response.data is not None
    return str(result.response.data.get("content"))


async def until(check: object, seconds: float, what: str) -> None:
    """Wait until ``check()`` holds (bounded)."""
    assert callable(check)
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_workers_behind_a_balancer_share_sessions_through_a_sigkill(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    require("haproxy", "apt-get install haproxy")
    balancer_port = free_port()
    url = f"http://127.0.0.1:{balancer_port}/interactions"
    workers: list[Worker] = []
    balancer: Balancer | None = None
    async with HttpOfflineDiscord(url=url) as offline:
        try:
            env = {
                "DISCORD_TOKEN": "offline-token",
                "DISCORD_PUBLIC_KEY": offline.public_key,
                "REDIS_URL": redis_server.url,
                "NYX_OFFLINE_API": offline.api_url,
            }
            workers = [Worker(TARGET, env, tmp_path) for _ in range(3)]
            for worker in workers:
                await asyncio.to_thread(worker.wait_until_up)
            balancer = Balancer([w.port for w in workers], balancer_port)
            await asyncio.to_thread(balancer.wait_until_up)
            await play(offline, workers)
        except BaseException:
            print(offline.requests)
            for worker in workers:
                print(worker.output()[-3000:])
            raise
        finally:
            if balancer is not None:
                balancer.stop()
            for worker in workers:
                worker.stop()


async def play(offline: HttpOfflineDiscord, workers: list[Worker]) -> None:
    victim = workers[1]
    users = [offline.add_member(f"user{i}") for i in range(LONG + SHORT)]

    async def start(users: list[OfflineUser], short: bool) -> list[InteractionResult]:
        return await asyncio.gather(
            *(offline.slash_command(u, "tally", {"short": short}, timeout=10) for u in users)
        )

    starts = await start(users[:LONG], short=False)
    clicked: list[list[InteractionResult]] = [[] for _ in range(LONG)]
    killed_after: list[int] = []

    async def stream(index: int, user: OfflineUser, message: OfflineMessage) -> None:
        for _ in range(CLICKS):
            clicked[index].append(await offline.click(user, message, label="inc", timeout=15))

    async def kill_midway() -> None:
        await until(lambda: sum(map(len, clicked)) >= LONG * CLICKS // 2, 30, "half the clicks")
        victim.kill()
        killed_after.append(len(offline.interactions))

    messages = [s.message for s in starts]
    assert all(m is not None for m in messages)
    await asyncio.gather(
        kill_midway(),
        *(stream(i, users[i], m) for i, m in enumerate(messages) if m is not None),
    )
    # Short tallies start once the victim is dead, so that their expiry, a side effect
    # that a crash in the middle would repeat, runs in the survivors only.
    starts += await start(users[LONG:], short=True)
    starters = [int(content_of(s).rsplit(" ", 1)[1]) for s in starts]
    assert len(set(starters[:LONG])) > 1, "the balancer spread the starts"
    for index, message in enumerate(messages):
        assert message is not None
        await offline.click(users[index], message, label="done", timeout=15)
    alive = {w.pid for w in workers if w is not victim}

    # Every interaction has one answer, or none when the worker died holding it.
    lost = [r for r in offline.interactions if offline.statuses.get(r.id) != 200]
    for result in offline.interactions:
        expected = [] if result in lost else [200]
        assert answers(offline, result) == expected, result
    assert len(lost) <= LONG, lost  # at most one click in flight per session
    assert all(r.id in {c.id for cs in clicked for c in cs} for r in lost)

    # Exact final state: the clicks a session counted are its answered clicks, each once,
    # plus maybe a lost one; but the victim may have answered its last click and died
    # before committing it (an answer goes out before the update is committed, over HTTP
    # as on the gateway).
    for index, results in enumerate(clicked):
        message = messages[index]
        assert message is not None
        _, final, _, listed = message.content.split()  # "final N clicks id,id,..."
        counted = listed.split(",")
        assert len(counted) == int(final) == len(set(counted)), message.content
        answered = {str(r.id) for r in results if offline.statuses[r.id] == 200}
        lost_here = {str(r.id) for r in results if offline.statuses[r.id] != 200}
        assert set(counted) <= answered | lost_here
        uncounted = [r for r in results if str(r.id) in answered - set(counted)]
        assert len(uncounted) <= 1, uncounted
        assert all(content_of(r).endswith(f"pid {victim.pid}") for r in uncounted), uncounted
        # In order: a session counts its clicks in the order they were made.
        order = [str(r.id) for r in results]
        assert counted == sorted(counted, key=order.index)

    # Clicks were served by several workers, and none by the victim once it was dead.
    served = Counter(
        int(content_of(r).rsplit(" ", 1)[1])
        for results in clicked
        for r in results
        if r.answered and content_of(r).startswith("count")
    )
    assert len(served) == 3 and served[victim.pid] > 0, served
    late = [r for r in offline.interactions[killed_after[0] + LONG :] if r.answered]
    assert all(f"pid {victim.pid}" not in (content_of(r)) for r in late)

    # The end promises resolve in the process that awaits them (unless it was killed),
    # and each short tally expires exactly once across the workers.
    def followups() -> dict[int, str]:
        return {i: s.followups[0].content for i, s in enumerate(starts) if s.followups}

    waiting = {i for i, pid in enumerate(starters) if pid in alive}
    await until(lambda: waiting <= followups().keys(), 20, "the end followups")
    for i in waiting:
        code = "EXPIRED" if i >= LONG else "ENDED"
        assert re.fullmatch(rf"ended {code} \d+ awaited in {starters[i]}", followups()[i])
    await until(
        lambda: len([m for m in offline.messages if m.content.startswith("expired")]) >= SHORT,
        20,
        "the expiries",
    )
    await asyncio.sleep(1.5)  # a second expiry would come within the workers' poll interval
    expired = [m.content for m in offline.messages if m.content.startswith("expired")]
    ids = Counter(text.split()[1] for text in expired)
    assert len(ids) == SHORT and set(ids.values()) == {1}, expired
