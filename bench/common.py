"""Shared helpers: the session and the View under test, payloads, timing."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import statistics
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import discord

from nyx_sessions import AbstractSession, SessionManager
from nyx_sessions.testing import payloads

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence, Sized

    from nyx_sessions.clock import Clock
    from nyx_sessions.testing import OfflineDiscord, OfflineUser

SEED = 20240601
RUNS = 5
ANSWERED = discord.InteractionResponseType.deferred_message_update
SENT = discord.InteractionResponseType.channel_message
# Handlers answer by setting the response type that ``defer()`` leaves behind, without
# its request: only the layer between discord.py's parser and the handler is measured.


# -- what is measured ------------------------------------------------------------------


class Tally:
    """Counts finished handlers; ``done`` is set when ``target`` is reached."""

    __slots__ = ("count", "done", "target")

    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            self.done.set()


class BenchSession(AbstractSession[None]):
    """The minimal session: one button, ttl=180, no HTTP anywhere."""

    __slots__ = ()
    ttl = 180.0
    tally: ClassVar[Tally | None] = None

    async def start(self) -> None:
        assert self.start_interaction is not None
        self.start_interaction.response._response_type = SENT

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        interaction.response._response_type = ANSWERED
        if BenchSession.tally is not None:
            BenchSession.tally.hit()
        return True


def bench_view(custom_id: str, timeout: float | None, tally: Tally | None) -> discord.ui.View:
    """The View counterpart of :class:`BenchSession`: one button, same answer."""

    async def answer(interaction: discord.Interaction[Any]) -> None:
        interaction.response._response_type = ANSWERED
        if tally is not None:
            tally.hit()

    button: discord.ui.Button[discord.ui.View] = discord.ui.Button(label="go", custom_id=custom_id)
    button.callback = answer  # type: ignore[method-assign]
    view = discord.ui.View(timeout=timeout)
    view.add_item(button)
    return view


def new_manager(
    client: discord.Client | None = None, clock: Clock | None = None, **options: Any
) -> SessionManager:
    """A manager on the memory store, the default (``redis_store`` measures the Redis store)."""
    return SessionManager(client, clock=clock, **options)


# -- payloads --------------------------------------------------------------------------


class PayloadKit:
    """Cheap gateway payloads: one template from the offline Discord, copied with new ids."""

    def __init__(self, offline: OfflineDiscord, user: OfflineUser) -> None:
        self._state = offline.client._connection
        self._ids = itertools.count(offline.world.new_id() + 10**12)
        self._command = offline.make_interaction_payload(
            user, discord.InteractionType.application_command, {"id": "1", "name": "go", "type": 1}
        )
        self._click = offline.make_interaction_payload(
            user, discord.InteractionType.component, {"custom_id": "", "component_type": 2}
        )
        self._message = payloads.message_payload(
            message_id=0,
            channel_id=offline.channel.id,
            author=offline.bot,
            body={"content": "bench"},
            application_id=offline.world.application_id,
        )

    def new_id(self) -> int:
        return next(self._ids)

    def command(self, state: Any = None) -> discord.Interaction[Any]:
        """A fresh slash-command interaction, to start a session with."""
        payload = dict(self._command)
        payload["id"] = str(self.new_id())
        payload["token"] = f"bench-{payload['id']}"
        return discord.Interaction(data=payload, state=state or self._state)  # type: ignore[arg-type]

    def message(self, message_id: int, custom_id: str) -> dict[str, Any]:
        """A bot message that carries one button, as Discord echoes it in clicks."""
        message = dict(self._message)
        message["id"] = str(message_id)
        button = {"type": 2, "style": 1, "label": "go", "custom_id": custom_id}
        message["components"] = [{"type": 1, "components": [button]}]
        return message

    def click(self, custom_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """A button-click ``INTERACTION_CREATE`` payload on ``message``."""
        payload = dict(self._click)
        payload["id"] = str(self.new_id())
        payload["token"] = f"bench-{payload['id']}"
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        payload["message"] = message
        return payload

    def renew(self, interactions: list[discord.Interaction[Any]]) -> None:
        """Make used interactions new again: a fresh id (the manager drops redeliveries)
        and an unanswered response."""
        for interaction in interactions:
            interaction.id = self.new_id()
            interaction.response._response_type = None

    def click_interaction(
        self, custom_id: str, message: dict[str, Any]
    ) -> discord.Interaction[Any]:
        return discord.Interaction(data=self.click(custom_id, message), state=self._state)  # type: ignore[arg-type]


def check_answered(interactions: list[discord.Interaction[Any]]) -> None:
    """Fail loudly when a measured run did not reach every handler."""
    missed = sum(1 for interaction in interactions if interaction.response._response_type is None)
    if missed:
        raise RuntimeError(f"{missed} of {len(interactions)} interactions were not answered")


async def start_sessions(
    manager: SessionManager, kit: PayloadKit, count: int, cls: type[BenchSession] = BenchSession
) -> list[BenchSession]:
    sessions = []
    for _ in range(count):
        session = cls(kit.command())
        await manager.start(session)
        sessions.append(session)
    return sessions


@contextmanager
def no_http(offline: OfflineDiscord) -> Iterator[None]:
    """Fail when the measured code made a REST call: only the session layer is measured."""
    before = len(offline.requests)
    yield
    made = offline.requests[before:]
    if made:
        raise RuntimeError(f"{len(made)} REST calls during a benchmark, first: {made[0]!r}")


# -- timing ----------------------------------------------------------------------------


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the collector out of the timed code."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect once, then freeze what is alive, so later collections skip the set-up.

    A full collection over a heap of pre-built interactions costs tenths of a second;
    frozen, the collections that run between timed loops stay cheap.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.collect()


async def settle(tasks: Sized) -> None:
    """Let the loop run until ``tasks`` (a live set of tasks) is empty.

    Turns of the loop rather than ``gather``: the tasks finish in one turn, and a gather
    would add its own cost per task to the timing.
    """
    while tasks:  # noqa: ASYNC110
        await asyncio.sleep(0)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def clock_ns() -> int:
    return time.perf_counter_ns()
