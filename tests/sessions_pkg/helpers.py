"""Helpers of the ready-made session tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import discord
from redis.asyncio import Redis

from nyx_sessions import AbstractSession, SessionEndData, SessionEvent, SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import (
    InteractionResult,
    ManualClock,
    OfflineDiscord,
    OfflineMessage,
    OfflineUser,
)
from tests.stores.conftest import make_client
from tests.stores.redis_server import RedisServer

S = TypeVar("S", bound=AbstractSession[Any])


async def start(
    offline: OfflineDiscord,
    manager: SessionManager,
    factory: Callable[[discord.Interaction[Any]], S],
    user: OfflineUser,
    *,
    client: discord.Client | None = None,
) -> tuple[S, OfflineMessage]:
    """Run a slash command whose handler starts ``factory(interaction)``; return both."""
    command = await offline.slash_command(user, "start", client=client, wait=False)
    session = factory(command.interaction)
    assert await manager.start(session)
    await command.wait_answered()
    assert command.message is not None
    return session, command.message


async def forge_click(
    offline: OfflineDiscord,
    user: OfflineUser,
    message: OfflineMessage,
    custom_id: str,
    *,
    component_type: int = discord.ComponentType.button.value,
    values: Sequence[str] | None = None,
    client: discord.Client | None = None,
) -> InteractionResult:
    """Feed a component interaction with a custom id built by hand, as a forger would."""
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = list(values)
    payload = offline.make_interaction_payload(
        user, discord.InteractionType.component, data, message=message
    )
    return await offline.feed(payload, client=client)


def ephemeral_text(result: InteractionResult) -> str:
    """Return the text of an ephemeral answer; fail if the answer was not one."""
    assert result.ephemeral, f"not an ephemeral answer: {result!r}"
    assert result.message is not None
    return result.message.content


async def wait_ended(session: AbstractSession[Any]) -> Any:
    """Return the session's end data, failing fast instead of hanging."""
    return await asyncio.wait_for(asyncio.shield(session.end_promise), 2)


class Process:
    """One bot process on a shared Redis: its own client, connection and manager."""

    def __init__(self, manager: SessionManager, client: discord.Client, redis: Redis) -> None:
        self.manager = manager
        self.client = client
        self.redis = redis


@asynccontextmanager
async def processes(
    offline: OfflineDiscord,
    server: RedisServer,
    clock: ManualClock,
    sessions: Sequence[type[AbstractSession[Any]]],
) -> AsyncIterator[Callable[..., Any]]:
    """Yield ``spawn(first=False)``, which starts a bot process; close them all on exit.

    The first process uses the offline Discord's own client; later ones log in a client
    of their own, as a restarted bot would. Tests also take the ``redis_client``
    fixture, which starts with an empty database.
    """
    running: list[Process] = []

    async def spawn(*, first: bool = False) -> Process:
        if first:
            client = offline.client
        else:
            client = discord.Client(intents=discord.Intents.none())
            await offline.login(client)
        redis = make_client(server)
        manager = SessionManager(
            client,
            store=RedisStore(redis, clock=clock),
            clock=clock,
            sessions=sessions,
            poll_interval=0.02,
            lease=2.0,
        )
        await manager.open()
        process = Process(manager, client, redis)
        running.append(process)
        return process

    try:
        yield spawn
    finally:
        for process in running:
            await process.manager.aclose()
            await process.redis.aclose()


def collect_ends(manager: SessionManager) -> list[SessionEndData]:
    """Return a list that the END events of ``manager`` are appended to."""
    ends: list[SessionEndData] = []

    async def on_end(session: AbstractSession[Any], end: SessionEndData) -> None:
        ends.append(end)

    manager.add_listener(SessionEvent.END, on_end)
    return ends


async def next_end(ends: list[SessionEndData]) -> SessionEndData:
    """Wait (briefly) for the first end in ``ends``."""
    for _ in range(200):
        if ends:
            return ends[0]
        await asyncio.sleep(0.005)
    raise AssertionError("no session ended")
