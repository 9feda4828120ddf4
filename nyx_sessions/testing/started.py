"""The sessions that bots started in the offline Discord, for tests to pick up.

The manager dispatches ``on_session_start`` through the client for every session it
starts. :class:`StartedSessions` listens to it on each client the offline Discord logs
in (``add_listener`` on a :class:`~discord.ext.commands.Bot`; on a plain
:class:`discord.Client`, an ``on_session_start`` that calls the client's own after
recording), so that a test can ask for "the session the command started" instead of
parsing its id out of a message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar, cast

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["StartedSessions"]

T = TypeVar("T")
_EVENT = "on_session_start"


class StartedSessions:
    """Every session started on the watched clients, oldest first."""

    __slots__ = ("_changed", "_handed_out", "_restore", "sessions")

    def __init__(self) -> None:
        self.sessions: list[Any] = []
        self._handed_out: set[int] = set()
        self._changed = asyncio.Condition()
        self._restore: dict[int, Callable[[], None]] = {}

    def watch(self, client: discord.Client) -> None:
        """Record the sessions that ``client``'s managers start."""
        if id(client) in self._restore:
            return
        if isinstance(client, commands.Bot):
            bot = client
            bot.add_listener(self._record, _EVENT)
            self._restore[id(client)] = lambda: bot.remove_listener(self._record, _EVENT)
            return
        own: Callable[..., Coroutine[Any, Any, Any]] | None = getattr(client, _EVENT, None)
        set_on_client = client.__dict__.get(_EVENT)  # by @client.event

        async def on_session_start(session: Any) -> None:
            await self._record(session)
            if own is not None:
                await own(session)

        setattr(client, _EVENT, on_session_start)

        def restore() -> None:
            if set_on_client is None:
                client.__dict__.pop(_EVENT, None)
            else:
                setattr(client, _EVENT, set_on_client)

        self._restore[id(client)] = restore

    def unwatch(self, client: discord.Client) -> None:
        """Stop recording ``client``'s sessions; put its own handler back."""
        restore = self._restore.pop(id(client), None)
        if restore is not None:
            restore()

    async def _record(self, session: Any) -> None:
        async with self._changed:
            self.sessions.append(session)
            self._changed.notify_all()

    async def wait_for(self, session_type: type[T], timeout: float) -> T:  # noqa: ASYNC109
        """Return the oldest ``session_type`` session not handed out yet, waiting for one.

        Raises
        ------
        TimeoutError
            None started within ``timeout`` seconds.
        """

        def unclaimed() -> T | None:
            for session in self.sessions:
                if isinstance(session, session_type) and id(session) not in self._handed_out:
                    return session
            return None

        async with self._changed:
            try:
                found = await asyncio.wait_for(self._changed.wait_for(unclaimed), timeout=timeout)
            except TimeoutError:
                started = ", ".join(type(s).__name__ for s in self.sessions) or "none"
                raise TimeoutError(
                    f"no {session_type.__name__} session started within {timeout} s "
                    f"(sessions started: {started}); is a SessionManager attached to the "
                    "client, and did the command start the session?"
                ) from None
        self._handed_out.add(id(found))
        return cast("T", found)

    def __repr__(self) -> str:
        return f"<StartedSessions {len(self.sessions)}>"
