"""Per-step cost of a 20-step conversation: in memory, in Redis, and replayed.

Run it with ``python -m bench.conversation [--quick]``.

Figures, at steps 1, 10 and 20 (microseconds per step, median of the runs):

* memory: ``manager.update`` of a click whose conversation stays suspended in memory;
* Redis, one process: the same on a ``RedisStore`` (the record read and written each step);
* Redis, two processes alternating: every step is served by the process that did not
  serve the one before, so each step replays the whole log first;
* the replay alone: ``converse()`` re-run over a log of 19 inputs up to its pending wait;
* a Redis round trip (``PING`` over one connection), the yardstick for the replay;
* the size of the encoded record after 20 steps.

The conversation answers its interactions by setting the response type a deferral
leaves behind, as the other benchmarks do: no REST call, only the session layer counts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any, ClassVar

import discord
from redis.asyncio import Redis

from bench.common import ANSWERED, SENT, PayloadKit, clock_ns, gc_paused
from bench.report import fmt_bytes, fmt_ns, report, section
from nyx_sessions import AbstractSession, ConversationSession, SessionManager
from nyx_sessions.codecs import StateCodec
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.redis_server import RedisServer

STEPS = 20
SHOWN = (1, 10, 20)


class Steps(ConversationSession[int]):
    """Twenty clicks on "next", each answered; the result is the count."""

    session_type = "bench.conversation"
    steps: ClassVar[int] = STEPS

    async def converse(self) -> int:
        self.answer(self.start_interaction, SENT)
        for _ in range(self.steps):
            self.answer(await self.wait_for("next"), ANSWERED)
        return self.steps

    def answer(self, interaction: Any, kind: discord.InteractionResponseType) -> None:
        # A replayed interaction is a stand-in, answered when it happened.
        if not self.replaying:
            interaction.response._response_type = kind


class Longer(Steps):
    """One step more, so that a record with all 20 steps logged can be looked at."""

    session_type = "bench.conversation.longer"
    steps: ClassVar[int] = STEPS + 1


class Plain(AbstractSession[int]):
    """The same twenty steps as a plain session with a handler: the yardstick."""

    session_type = "bench.conversation.plain"

    async def start(self) -> None:
        start: Any = self.start_interaction
        start.response._response_type = SENT
        self.data["step"] = 0

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        interaction.response._response_type = ANSWERED
        self.data["step"] += 1
        if self.data["step"] == STEPS:
            await self.stop(result=STEPS)
        return True


class Run:
    """Sessions started on ``managers[0]``; step ``k`` is served by ``pick(k)``."""

    def __init__(
        self,
        kit: PayloadKit,
        managers: list[SessionManager],
        sessions: int,
        cls: type[AbstractSession[int]] = Steps,
    ) -> None:
        self.cls = cls
        self.kit = kit
        self.managers = managers
        self.sessions = sessions
        self.per_step: dict[int, float] = {}
        self.started: list[AbstractSession[int]] = []

    async def start(self) -> None:
        for _ in range(self.sessions):
            session = self.cls(self.kit.command())
            assert await self.managers[0].start(session)
            self.started.append(session)

    async def steps(self, pick: Callable[[int], SessionManager]) -> None:
        """Click every session once per step; time each step over all of them."""
        targets = []
        for session in self.started:
            custom_id = session.custom_id.push("next").build()
            targets.append((custom_id, self.kit.message(self.kit.new_id(), custom_id)))
        for step in range(1, STEPS + 1):
            clicks = [self.kit.click_interaction(*target) for target in targets]
            manager = pick(step)
            with gc_paused():
                began = clock_ns()
                for click in clicks:
                    await manager.update(click)
                self.per_step[step] = (clock_ns() - began) / len(clicks)
            missed = sum(1 for click in clicks if not click.response.is_done())
            if missed:
                raise RuntimeError(f"step {step}: {missed} clicks were not answered")
        ended = sum(1 for session in self.started if session.end_promise.done())
        if pick(STEPS) is self.managers[0] and ended != len(self.started):
            raise RuntimeError(f"{len(self.started) - ended} conversations did not end")


async def measure_memory(
    kit: PayloadKit, sessions: int, cls: type[AbstractSession[int]] = Steps
) -> Run:
    manager = SessionManager(clock=ManualClock(start=time.time()), sessions=[cls])
    try:
        await manager.open()
        run = Run(kit, [manager], sessions, cls)
        await run.start()
        await run.steps(lambda _: manager)
        return run
    finally:
        await manager.aclose()


async def measure_redis(
    server: RedisServer,
    kit: PayloadKit,
    sessions: int,
    *,
    alternate: bool,
    cls: type[AbstractSession[int]] = Steps,
) -> Run:
    clock = ManualClock(start=time.time())
    stores = [RedisStore.from_url(server.url) for _ in range(2)]
    managers = [
        SessionManager(store=store, clock=clock, sessions=[cls], poll_interval=3600)
        for store in stores
    ]
    try:
        for manager in managers:
            await manager.open()
        run = Run(kit, managers, sessions, cls)
        await run.start()
        await run.steps(lambda step: managers[step % 2] if alternate else managers[0])
        return run
    finally:
        for manager in managers:
            await manager.aclose()
        for store in stores:
            await store.aclose()


async def logged(manager: SessionManager, kit: PayloadKit) -> Longer:
    """A conversation with 20 logged steps, waiting for its 21st."""
    session = Longer(kit.command())
    assert await manager.start(session)
    custom_id = session.custom_id.push("next").build()
    message = kit.message(kit.new_id(), custom_id)
    for _ in range(STEPS):
        await manager.update(kit.click_interaction(custom_id, message))
    return session


async def measure_replay(server: RedisServer, kit: PayloadKit, repeats: int) -> tuple[float, int]:
    """Nanoseconds to replay 20 logged steps up to the pending wait, and the record's size.

    The replay alone: the record is read once, and each repeat restores a fresh session
    object from it and runs ``converse()`` over the log, as a process that gets the
    next click does after reading the record.
    """
    store = RedisStore.from_url(server.url)
    manager = SessionManager(
        store=store, clock=ManualClock(start=time.time()), sessions=[Steps, Longer]
    )
    try:
        await manager.open()
        session = await logged(manager, kit)
        record = await store.get(session.id)
        assert record is not None
        codec = StateCodec()
        encoded = codec.encode_record(record)
        timings = []
        for _ in range(repeats):
            restored = Longer.restore(
                session_id=record.session_id,
                owner_id=record.owner_id,
                guild_id=record.guild_id,
                channel_id=record.channel_id,
                message_id=record.message_id,
                data=codec.decode_record(encoded).data,
            )
            restored.manager = manager
            with gc_paused():
                began = clock_ns()
                flow = await restored._ready(None)
                timings.append(clock_ns() - began)
            assert flow is not None
            assert flow.pending is not None
            assert not flow.replay
            restored._cancel()
        return statistics.median(timings), len(encoded)
    finally:
        await manager.aclose()
        await store.aclose()


async def round_trip(server: RedisServer, repeats: int) -> float:
    """Nanoseconds of one ``PING`` over one connection, median."""
    redis = Redis(host=server.host, port=server.port)
    try:
        await redis.ping()
        timings = []
        for _ in range(repeats):
            began = clock_ns()
            await redis.ping()
            timings.append(clock_ns() - began)
        return statistics.median(timings)
    finally:
        await redis.aclose()


def show(label: str, run: Run) -> None:
    report(label, *(fmt_ns(run.per_step[step]) for step in SHOWN))


async def main(quick: bool) -> None:
    sessions = 50 if quick else 300
    section(f"conversation: {STEPS} steps, {sessions} conversations a run")
    report("per step at step", *(str(step) for step in SHOWN))
    async with OfflineDiscord() as offline:
        kit = PayloadKit(offline, offline.add_member("alice"))
        show("memory, a plain session (yardstick)", await measure_memory(kit, sessions, Plain))
        show("memory", await measure_memory(kit, sessions))
        binary = shutil.which("redis-server")
        if binary is None:
            print("  redis-server is not installed: the Redis figures are skipped")
            return
        server = RedisServer(binary)
        server.start()
        try:
            plain = await measure_redis(server, kit, sessions, alternate=False, cls=Plain)
            show("redis, a plain session (yardstick)", plain)
            one = await measure_redis(server, kit, sessions, alternate=False)
            show("redis, one process", one)
            two = await measure_redis(server, kit, sessions, alternate=True)
            show("redis, two processes (a replay every step)", two)
            replay, size = await measure_replay(server, kit, 50 if quick else 500)
            ping = await round_trip(server, 200 if quick else 2_000)
        finally:
            server.close()
    report(f"replay of {STEPS} logged steps", fmt_ns(replay))
    report("redis round trip (PING)", fmt_ns(ping))
    verdict = "pass" if replay < ping else "FAIL"
    report("replay < one round trip", verdict)
    report(f"record after {STEPS} steps", fmt_bytes(size))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.conversation", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    asyncio.run(main(parser.parse_args().quick))
