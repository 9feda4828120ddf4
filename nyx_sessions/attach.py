"""How a manager plugs into a discord.py client without taking anything away from it.

discord.py hands every component and modal interaction to its view store
(``ConnectionState._view_store``) synchronously, while parsing the gateway event, and
then dispatches ``on_interaction`` as usual. The hook wraps three methods of that one
store object:

- ``dispatch_view`` and ``dispatch_modal``: ids in the manager's custom-id format go to
  the manager; everything else goes on to discord.py's own views, modals and
  DynamicItems, untouched. ``on_interaction`` listeners still see every interaction.
- ``add_view``: a view (or modal) whose every dispatchable item carries the manager's
  ids is not stored, since the manager routes its interactions; otherwise a
  ``View(timeout=None)`` sent by a session would stay in discord.py's store for ever.
  The message id it was sent with is given to the session.

It also chains the client's ``setup_hook`` so that a manager created before the event
loop runs starts its background work when the client logs in. :meth:`ClientHook.remove`
puts everything back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from .manager import SessionManager

__all__ = ["ClientHook"]

_log = logging.getLogger("nyx_sessions")
_HOOKED = ("dispatch_view", "dispatch_modal", "add_view")


class ClientHook:
    """The manager's hooks on one client; see the module docstring."""

    __slots__ = ("_client", "_manager", "_setup_hook", "_state_clear", "_view_store")

    def __init__(self, manager: SessionManager, client: discord.Client) -> None:
        self._manager = manager
        self._client = client
        self._view_store: Any = None
        self._setup_hook: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._state_clear: Callable[..., None] | None = None

    @property
    def client(self) -> discord.Client:
        """The hooked client."""
        return self._client

    def install(self) -> None:
        """Install the hooks on the client's view store and ``setup_hook``."""
        state: Any = self._client._connection
        if getattr(state, "_nyx_sessions_hook", None) is not None:
            raise RuntimeError(f"{self._client!r} already has a session manager attached")
        state._nyx_sessions_hook = self
        self._hook_view_store(state._view_store)

        # discord.py replaces the view store when the client's state is cleared.
        original_clear = state.clear

        def clear(*args: Any, **kwargs: Any) -> None:
            original_clear(*args, **kwargs)
            if state._view_store is not self._view_store:
                self._hook_view_store(state._view_store)

        self._state_clear = original_clear
        state.clear = clear

        original_setup_hook = self._client.setup_hook

        async def setup_hook() -> None:
            await self._manager.open()
            await original_setup_hook()

        self._setup_hook = original_setup_hook
        self._client.setup_hook = setup_hook  # type: ignore[method-assign]

    def remove(self) -> None:
        """Undo :meth:`install`."""
        state: Any = self._client._connection
        if getattr(state, "_nyx_sessions_hook", None) is not self:
            return
        del state._nyx_sessions_hook
        self._unhook_view_store()
        if self._state_clear is not None:
            del state.clear
        if self._setup_hook is not None:
            del self._client.setup_hook
        self._state_clear = self._setup_hook = None

    def _hook_view_store(self, view_store: Any) -> None:
        self._unhook_view_store()
        self._view_store = view_store
        original_dispatch_view = view_store.dispatch_view
        original_dispatch_modal = view_store.dispatch_modal
        original_add_view = view_store.add_view
        route = self._manager._route

        def dispatch_view(component_type: int, custom_id: str, interaction: Any) -> None:
            if not route(interaction, custom_id):
                original_dispatch_view(component_type, custom_id, interaction)

        def dispatch_modal(custom_id: str, interaction: Any, *args: Any) -> None:
            if not route(interaction, custom_id):
                original_dispatch_modal(custom_id, interaction, *args)

        def add_view(view: discord.ui.view.BaseView, message_id: int | None = None) -> None:
            if not self._manager._adopt_view(view, message_id):
                original_add_view(view, message_id)

        view_store.dispatch_view = dispatch_view
        view_store.dispatch_modal = dispatch_modal
        view_store.add_view = add_view

    def _unhook_view_store(self) -> None:
        if self._view_store is None:
            return
        for name in _HOOKED:
            self._view_store.__dict__.pop(name, None)
        self._view_store = None

    def __repr__(self) -> str:
        return f"<ClientHook client={self._client!r}>"


def session_ids_of(
    view: discord.ui.view.BaseView, extract: Callable[[object], str | None]
) -> list[str] | None:
    """Return the session ids of every dispatchable item of ``view``.

    None when the view has no dispatchable item or any item is not a session's.
    """
    if isinstance(view, discord.ui.Modal):
        session_id = extract(view.custom_id)
        return None if session_id is None else [session_id]
    found: list[str] = []
    for item in view.walk_children():
        if isinstance(item, discord.ui.DynamicItem) or not item.is_dispatchable():
            if isinstance(item, discord.ui.DynamicItem):
                return None
            continue
        session_id = extract(getattr(item, "custom_id", None))
        if session_id is None:
            return None
        found.append(session_id)
    return found or None
