"""What the reliability tests share: a counting session, bot "processes", REST bookkeeping.

A :class:`Process` stands for one bot process: its own discord.py client logged into the
one offline Discord, its own Redis connection, :class:`RedisStore` and
:class:`SessionManager`. Several of them on one redis-server are several processes of a
bot sharing sessions, as in ``tests/stores/test_manager_redis.py``.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import discord

from nyx_sessions import AbstractSession, SessionEvent
from nyx_sessions.errors import MalformedCustomIdError, RevisionConflictError, StoreError
from tests.stores.redis_server import RedisServer

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from nyx_sessions import SessionManager
    from nyx_sessions.testing import InteractionResult, OfflineDiscord, OfflineUser
    from nyx_sessions.testing.records import RecordedRequest

__all__ = [
    "LEASE_HOLDER",
    "DurableRedisServer",
    "Process",
    "Tally",
    "already_acknowledged",
    "callbacks_by_interaction",
    "callbacks_of",
    "ends_per_session",
    "notices",
    "start_tally",
    "succeeded",
    "wait_idle",
]

_WORK = "nyx-sessions-work-"  # the task that drains a busy session's queue

LEASE_HOLDER = Path(__file__).with_name("lease_holder.py")
"""The script that plays a second bot process holding a session's lease."""


class Tally(AbstractSession[int]):
    """A counter: ``inc`` adds one, ``slow`` waits for :attr:`gate` first, ``done`` stops.

    ``end()`` appends to :attr:`ends`, so that a test can count how often it ran.
    """

    session_type = "reliability.tally"
    ttl = 30
    ends: ClassVar[list[tuple[str, str, int]]] = []
    gate: ClassVar[asyncio.Event | None] = None
    entered: ClassVar[asyncio.Event | None] = None

    async def start(self) -> None:
        self.data["count"] = 0
        view = discord.ui.View(timeout=None)
        for label, token in (("+1", "inc"), ("slow +1", "slow"), ("Done", "done")):
            view.add_item(
                discord.ui.Button(label=label, custom_id=self.custom_id.push(token).build())
            )
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("0", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        data: Any = interaction.data
        try:
            action = self.manager.codec.create_iterator(data["custom_id"]).get_at(0)
        except MalformedCustomIdError:
            action = None
        if action == "done":
            await interaction.response.edit_message(content="done", view=None)
            await self.stop(result=self.data["count"])
            return False
        if action == "slow":
            if Tally.entered is not None:
                Tally.entered.set()
            if Tally.gate is not None:
                await Tally.gate.wait()
        elif action != "inc":
            await interaction.response.send_message("unknown button", ephemeral=True)
            return False
        self.data["count"] += 1
        await asyncio.sleep(0)  # let other work interleave
        await interaction.response.edit_message(content=str(self.data["count"]))
        return True

    async def end(self) -> None:
        code = self.end_code.value if self.end_code is not None else "?"
        Tally.ends.append((self.id, code, int(self.data.get("count", -1))))
        self.result = self.data.get("count")


class Process:
    """One bot process: its own client, Redis connection, store and manager."""

    def __init__(self, manager: SessionManager, client: discord.Client, redis: Redis) -> None:
        self.manager = manager
        self.client = client
        self.redis = redis
        self.errors: list[tuple[str | None, Any, BaseException]] = []
        manager.add_listener(SessionEvent.ERROR, self._on_error)

    async def _on_error(self, session: Any, interaction: Any, error: BaseException) -> None:
        self.errors.append((getattr(session, "id", None), interaction, error))

    def failed_commits(self) -> list[str | None]:
        """The session ids of the commits that failed, one per ERROR event."""
        return [
            session_id
            for session_id, _, error in self.errors
            if isinstance(error, RevisionConflictError)
            or (isinstance(error, StoreError) and "(commit)" in str(error))
        ]

    async def close(self) -> None:
        await self.manager.aclose()
        await self.manager.store.aclose()  # borrowed by the manager: closed by its owner
        await self.redis.aclose()

    def __repr__(self) -> str:
        return f"<Process {self.manager.lease_owner}>"


class DurableRedisServer(RedisServer):
    """A redis-server that acknowledges a write only once it is on disk.

    ``appendfsync always``: Redis fsyncs its append-only file before it replies, so
    every write a client saw succeed survives a SIGKILL. That makes "nothing committed
    is lost" a property of the library alone, not of Redis's durability settings.
    """

    persistence: ClassVar[dict[str, str]] = {
        "save": "",
        "appendonly": "yes",
        "appendfsync": "always",
    }

    def _answers_ping(self) -> bool:
        # While it loads its append-only file, Redis answers INFO but refuses the rest.
        if not super()._answers_ping():
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


async def start_tally(
    offline: OfflineDiscord, process: Process, user: OfflineUser, cls: type[Tally] = Tally
) -> Tally:
    """Start a session of ``cls`` in ``process`` from a slash command of ``user``."""
    command = await offline.slash_command(user, "tally", client=process.client, wait=False)
    session = cls(command.interaction)
    assert await process.manager.start(session)
    await command.wait_answered()
    return session


async def wait_idle(*managers: SessionManager, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until no manager has a busy session or a running update task."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while loop.time() < give_up:
        busy = any(entry.busy for manager in managers for entry in manager._live.values()) or any(
            task.get_name().startswith(_WORK) and not task.done()
            for manager in managers
            for task in manager._tasks
        )
        if not busy:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the managers stayed busy")


def callbacks_of(offline: OfflineDiscord, interaction_id: int) -> list[RecordedRequest]:
    """Every callback POST the bot made for one interaction."""
    marker = f"/interactions/{interaction_id}/"
    return [
        request
        for request in offline.requests
        if request.method == "POST"
        and request.path.startswith(marker)
        and request.path.endswith("/callback")
    ]


def callbacks_by_interaction(offline: OfflineDiscord) -> dict[int, list[RecordedRequest]]:
    """Every callback POST the bot made, by interaction id (one pass over the log)."""
    found: dict[int, list[RecordedRequest]] = {}
    for request in offline.requests:
        parts = request.path.split("/")  # "", "interactions", id, token, "callback"
        if request.method == "POST" and len(parts) == 5 and parts[1] == "interactions":
            found.setdefault(int(parts[2]), []).append(request)
    return found


def already_acknowledged(offline: OfflineDiscord) -> list[RecordedRequest]:
    """Every request that Discord refused with 40060 "already acknowledged"."""
    return [
        request
        for request in offline.requests
        if isinstance(request.response, dict) and request.response.get("code") == 40060
    ]


def succeeded(result: InteractionResult) -> bool:
    """Whether a click was answered by the handler (an edit) and nothing took it back.

    A "try again" reply, or a follow-up notice sent after the edit because the state
    could not be saved, makes it a failure.
    """
    response = result.response
    return (
        response is not None
        and response.type is discord.InteractionResponseType.message_update
        and not result.ephemeral
        and not notices(result)
    )


def notices(result: InteractionResult) -> list[str]:
    """The ephemeral follow-ups sent for an interaction (e.g. "not saved, try again")."""
    return [message.content for message in result.followups if message.ephemeral]


def ends_per_session() -> Counter[str]:
    """How many times ``end()`` ran, per session id."""
    return Counter(session_id for session_id, _, _ in Tally.ends)
