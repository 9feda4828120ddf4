"""Session events and the listeners that receive them.

========== ================================================= ========================
event      listener arguments                                client event
========== ================================================= ========================
START      ``(session)``                                     ``on_session_start``
UPDATE     ``(session, interaction)``                        ``on_session_update``
END        ``(session, end_data)``                           ``on_session_end``
FILTERED   ``(session, interaction)``                        ``on_session_filtered``
ERROR      ``(session_or_None, interaction_or_None, error)`` ``on_session_error``
MISSING    ``(session_id, interaction)``                     ``on_session_missing``
========== ================================================= ========================

An event fires once, in the process where it happened. Listeners run in their own
tasks, so a slow listener never holds a session up, and a failing one is logged.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import discord

    from ._types import Listener

__all__ = ["SessionEvent"]

_log = logging.getLogger("nyx_sessions")


class SessionEvent(enum.StrEnum):
    """What happened to a session; the value is the client event's suffix."""

    START = "start"
    """A session started: ``(session)``."""
    UPDATE = "update"
    """A session handled an interaction: ``(session, interaction)``."""
    END = "end"
    """A session ended: ``(session, end_data)``."""
    FILTERED = "filtered"
    """A filter refused an interaction: ``(session, interaction)``."""
    ERROR = "error"
    """A hook failed: ``(session_or_None, interaction_or_None, error)``."""
    MISSING = "missing"
    """An interaction named an unknown, ended or expired session: ``(session_id, interaction)``."""


_CLIENT_EVENTS = {event: f"session_{event.value}" for event in SessionEvent}
_CLIENT_HANDLERS = {event: f"on_session_{event.value}" for event in SessionEvent}


class EventHub:
    """Listeners per event, called in tasks; every event also goes through the client."""

    __slots__ = ("_client", "_listeners", "_on_class", "_tasks")

    def __init__(self) -> None:
        self._listeners: dict[SessionEvent, list[Listener]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: discord.Client | None = None
        self._on_class: dict[SessionEvent, bool] = {}

    def bind(self, client: discord.Client | None) -> None:
        """Dispatch every event through ``client`` as ``on_session_<event>`` too."""
        self._client = client
        # Methods of a Client subclass: a class does not change, so this is looked at once.
        self._on_class = {
            event: client is not None and hasattr(type(client), handler)
            for event, handler in _CLIENT_HANDLERS.items()
        }

    def _client_listens(self, client: Any, event: SessionEvent) -> bool:
        """Tell whether dispatching ``event`` through ``client`` would reach anything.

        discord.py's ``Client.dispatch`` logs and looks up a handler on every call, which
        costs more than the rest of a click when nothing listens. These are dict lookups.
        """
        attributes = client.__dict__
        handler = _CLIENT_HANDLERS[event]
        if handler in attributes or self._on_class[event]:  # @client.event, or a method
            return True
        extra: dict[str, Any] | None = attributes.get("extra_events")  # commands.Bot
        if extra and extra.get(handler):
            return True
        waiting: dict[str, Any] | None = attributes.get("_listeners")  # client.wait_for
        return bool(waiting and waiting.get(_CLIENT_EVENTS[event]))

    def add(self, event: SessionEvent | str, callback: Listener) -> None:
        """Register a coroutine function for ``event``."""
        if not inspect.iscoroutinefunction(callback):
            raise TypeError(f"listener {callback!r} must be a coroutine function")
        self._listeners.setdefault(SessionEvent(event), []).append(callback)

    def remove(self, event: SessionEvent | str, callback: Listener) -> None:
        """Unregister ``callback``; a no-op when it was not registered."""
        listeners = self._listeners.get(SessionEvent(event))
        if listeners and callback in listeners:
            listeners.remove(callback)
            if not listeners:
                del self._listeners[SessionEvent(event)]

    def emit(self, event: SessionEvent, *args: Any) -> None:
        """Schedule every listener of ``event`` and dispatch it through the client."""
        client = self._client
        if client is not None and self._client_listens(client, event):
            client.dispatch(_CLIENT_EVENTS[event], *args)
        listeners = self._listeners.get(event)
        if not listeners:
            return
        for callback in tuple(listeners):
            task = asyncio.get_running_loop().create_task(
                self._run(event, callback, args), name=f"nyx-sessions-event-{event.value}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(event: SessionEvent, callback: Listener, args: tuple[Any, ...]) -> None:
        try:
            await callback(*args)
        except Exception:
            _log.exception("Ignoring exception in %s listener %r", event.value, callback)

    async def drain(self) -> None:
        """Wait for the listeners that are still running."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    def __repr__(self) -> str:
        counts = {event.value: len(callbacks) for event, callbacks in self._listeners.items()}
        return f"<EventHub listeners={counts}>"
