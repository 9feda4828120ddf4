"""Sessions: the :class:`Session` protocol and :class:`AbstractSession`, the class to subclass."""

from __future__ import annotations

import asyncio
import logging
import secrets
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, runtime_checkable

import discord

from ._types import ResultT, ResultT_co
from .codecs import CustomIdBuilder, SessionCustomIdCodec, is_valid_session_id
from .errors import SessionStateError

if TYPE_CHECKING:
    from .end import EndCode, SessionEndData
    from .filters import SessionStartFilter, SessionUpdateFilter
    from .manager import SessionManager

__all__ = ["AbstractSession", "Session", "new_session_id"]

_log = logging.getLogger("nyx_sessions")

_DEFAULT_CODEC = SessionCustomIdCodec()
# Looked up once: discord.py's enum attributes are not free on every click.
_MODAL_SUBMIT = discord.InteractionType.modal_submit
_BUTTON = discord.ComponentType.button.value
_SELECT_TYPES = frozenset(
    {
        discord.ComponentType.select.value,
        discord.ComponentType.user_select.value,
        discord.ComponentType.role_select.value,
        discord.ComponentType.mentionable_select.value,
        discord.ComponentType.channel_select.value,
    }
)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def new_session_id() -> str:
    """Return a random, unguessable session id: 96 bits, 16 URL-safe characters.

    Never one that starts with ``-``, which a command line would take for an option.
    """
    while True:
        session_id = secrets.token_urlsafe(12)
        if session_id[0] != "-":
            return session_id


@runtime_checkable
class Session(Protocol[ResultT_co]):
    """What :class:`SessionManager` needs of a session.

    :class:`AbstractSession` implements it; write your own only when subclassing that
    does not fit.

    Attributes
    ----------
    id:
        The session's id.
    manager:
        The manager serving the session, set by :meth:`SessionManager.start`.
    start_interaction:
        The interaction that started the session, for ``start()``; None once ``start()``
        has returned (unless the manager keeps it) and after a restore.
    owner_id, guild_id, channel_id, message_id:
        Who started the session, and where it lives.
    data:
        The state a store persists.
    result:
        The session's result so far.
    end_code:
        Why the session ended, or None while it lives.
    """

    id: str
    manager: SessionManager | None
    start_interaction: discord.Interaction[Any] | None
    owner_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    data: dict[str, Any]
    result: Any
    end_code: EndCode | None

    # Read-only here, so that subclasses may narrow them (``ttl = 60``).
    @property
    def session_type(self) -> str:
        """The stable name of the session's class, recorded by persistent stores."""
        ...

    @property
    def data_version(self) -> int:
        """The version of the layout of :attr:`data`."""
        ...

    @property
    def ttl(self) -> float | None:
        """Seconds of inactivity before the session expires, or None."""
        ...

    @property
    def max_lifetime(self) -> float | None:
        """Absolute cap on the session's life in seconds, or None."""
        ...

    @property
    def start_filter(self) -> SessionStartFilter | None:
        """The filter applied when the session starts."""
        ...

    @property
    def update_filter(self) -> SessionUpdateFilter | None:
        """The filter applied to every interaction the session receives."""
        ...

    @property
    def end_promise(self) -> asyncio.Future[SessionEndData]:
        """A future that resolves to :class:`SessionEndData` when the session ends."""
        ...

    @property
    def custom_id(self) -> CustomIdBuilder:
        """A fresh custom-id builder for this session."""
        ...

    async def start(self) -> None:
        """Send the session's first message."""
        ...

    async def update(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle an interaction; return True to refresh the TTL."""
        ...

    async def end(self) -> None:
        """Clean up when the session ends, for any reason."""
        ...

    def get_result(self) -> ResultT_co | None:
        """Return the session's result."""
        ...


class AbstractSession(ABC, Generic[ResultT]):
    """Base class for sessions: subclass it, implement :meth:`start` and the handlers.

    Parameters
    ----------
    interaction:
        The interaction that starts the session (usually a slash command). It gives the
        session its owner, guild and channel. None only for sessions restored from a
        store, which are built without calling ``__init__``.
    session_id:
        The session's id; a random, unguessable one by default.

    Attributes
    ----------
    id:
        The session's id: random and unguessable unless given.
    manager:
        The :class:`~nyx_sessions.SessionManager` that started (or restored) the session.
    start_interaction:
        The interaction that started the session, for :meth:`start`. None once
        ``start()`` has returned, unless the manager was made with
        ``keep_start_interaction=True``, and None after a restore.
    owner_id:
        The id of the user who started the session.
    guild_id, channel_id:
        Where the session was started (``guild_id`` is None in direct messages).
    message_id:
        The session's message, captured when it is sent with the session's
        components (or on the first click); None until known.
    session_type:
        The stable name a persistent store records (default: the class's qualified
        name). Set it explicitly so that renaming the class keeps old records usable.
    data_version:
        The version of the layout of :attr:`data`; raise it and override
        :meth:`migrate_data` when the layout changes.
    ttl:
        Seconds of inactivity after which the session expires (sliding: a handler that
        returns True starts the count again); None for no TTL.
    max_lifetime:
        Absolute cap on the session's life in seconds, refreshed by nothing; None for none.
    start_filter:
        The filter applied when the session starts; None lets everyone start it.
    update_filter:
        The filter applied to every interaction the session receives; None for none.
    data:
        The session's state; a persistent store saves it after every update.
    result:
        What :meth:`get_result` returns by default.
    end_code:
        Why the session ended, once it has; None before.
    """

    session_type: ClassVar[str] = ""
    data_version: ClassVar[int] = 1
    ttl: float | None = 300.0
    max_lifetime: float | None = None
    start_filter: SessionStartFilter | None = None
    update_filter: SessionUpdateFilter | None = None

    __slots__ = (
        "_end_promise",
        "channel_id",
        "data",
        "end_code",
        "guild_id",
        "id",
        "manager",
        "message_id",
        "owner_id",
        "result",
        "start_interaction",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "session_type" not in cls.__dict__:
            cls.session_type = f"{cls.__module__}.{cls.__qualname__}"

    def __init__(
        self, interaction: discord.Interaction[Any], *, session_id: str | None = None
    ) -> None:
        if session_id is None:
            session_id = new_session_id()
        elif not is_valid_session_id(session_id):
            raise ValueError(
                f"invalid session id {session_id!r}: use 1 to 64 characters of A-Z a-z 0-9 _ -"
            )
        self.id: str = session_id
        self.manager: SessionManager | None = None
        self.start_interaction: discord.Interaction[Any] | None = interaction
        self.owner_id: int = interaction.user.id
        # The cached guild's id where there is one: one int object for every session in
        # the guild, rather than the one each interaction parsed (32 bytes a session).
        guild = interaction.guild
        self.guild_id: int | None = guild.id if guild is not None else interaction.guild_id
        self.channel_id: int | None = interaction.channel_id
        self.message_id: int | None = None
        self.data: dict[str, Any] = {}
        self.result: ResultT | None = None
        self.end_code: EndCode | None = None
        self._end_promise: asyncio.Future[SessionEndData] | None = None

    @classmethod
    def restore(
        cls,
        *,
        session_id: str,
        owner_id: int,
        guild_id: int | None,
        channel_id: int | None,
        message_id: int | None,
        data: dict[str, Any],
        result: Any = None,
    ) -> AbstractSession[ResultT]:
        """Rebuild a session from stored state, without calling ``__init__``.

        ``start_interaction`` is None on a restored session: the interaction token is
        not kept. Keep everything a session needs in :attr:`data`.
        """
        self = cls.__new__(cls)
        self.id = session_id
        self.manager = None
        self.start_interaction = None
        self.owner_id = owner_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.message_id = message_id
        self.data = data
        self.result = result
        self.end_code = None
        self._end_promise = None
        return self

    @classmethod
    def migrate_data(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Bring ``data`` stored at ``from_version`` up to :attr:`data_version`.

        The default accepts the data unchanged; override it when the layout changes.
        """
        return data

    # -- what the manager and the handlers use -------------------------------------------

    @property
    def custom_id(self) -> CustomIdBuilder:
        """A fresh custom-id builder for this session, on every access."""
        codec = self.manager.codec if self.manager is not None else _DEFAULT_CODEC
        return codec.create_builder(self.id)

    @property
    def end_promise(self) -> asyncio.Future[SessionEndData]:
        """A future that resolves to :class:`~nyx_sessions.SessionEndData` when the session ends.

        It resolves whatever the reason (stopped, expired, cancelled, rejected, failed,
        shut down), also when the session ends in another process sharing the store.
        """
        if self._end_promise is None:
            self._end_promise = asyncio.get_running_loop().create_future()
        return self._end_promise

    @property
    def ended(self) -> bool:
        """Whether the session has ended."""
        return self.end_code is not None

    @property
    def channel(self) -> discord.PartialMessageable | None:
        """The session's channel, for sending or editing by id (works after a restart)."""
        if self.manager is None or self.manager.client is None or self.channel_id is None:
            return None
        return self.manager.client.get_partial_messageable(self.channel_id, guild_id=self.guild_id)

    @property
    def message(self) -> discord.PartialMessage | None:
        """The session's message, by id, so that ``end()`` can edit it after 15 minutes."""
        channel = self.channel
        if channel is None or self.message_id is None:
            return None
        return channel.get_partial_message(self.message_id)

    # -- hooks -----------------------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None:
        """Send the session's first message, usually through ``start_interaction``."""

    async def update(self, interaction: discord.Interaction[Any]) -> bool:
        """Dispatch ``interaction`` to the handler for its component type.

        Buttons go to :meth:`handle_button`, every kind of select menu to
        :meth:`handle_select_menu`, modal submits to :meth:`handle_modal`.

        Returns
        -------
        bool
            True to refresh the session's TTL.
        """
        if interaction.type is _MODAL_SUBMIT:
            return await self.handle_modal(interaction)
        data: Any = interaction.data or {}
        component_type = data.get("component_type")
        if component_type == _BUTTON:
            return await self.handle_button(interaction)
        if type(component_type) is int and component_type in _SELECT_TYPES:
            return await self.handle_select_menu(interaction)
        _log.warning(
            "Session %s (%s) got an interaction it cannot dispatch: type %s, component type %s",
            self.id,
            self.session_type,
            interaction.type,
            component_type,
        )
        return False

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle a button click; return True to refresh the TTL."""
        return self._unhandled("button")

    async def handle_select_menu(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle a select menu choice (any kind of select); return True to refresh the TTL."""
        return self._unhandled("select menu")

    async def handle_modal(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle a modal submit; return True to refresh the TTL."""
        return self._unhandled("modal")

    async def end(self) -> None:
        """Run when the session ends, for any reason; :attr:`end_code` tells which."""

    def get_result(self) -> ResultT | None:
        """Return the session's result; :attr:`result` by default."""
        return self.result

    # -- actions ---------------------------------------------------------------------------

    async def stop(self, result: Any = MISSING, reason: str | None = None) -> None:
        """End the session with :attr:`EndCode.ENDED <nyx_sessions.EndCode.ENDED>`.

        Inside one of the session's own handlers the end runs as soon as the handler
        returns; elsewhere this waits until the session has ended.

        Parameters
        ----------
        result:
            Sets :attr:`result` when given.
        reason:
            A free-form explanation, passed on in :class:`~nyx_sessions.SessionEndData`.
        """
        if self.manager is None:
            raise SessionStateError(f"session {self.id} was never started")
        from .end import EndCode

        if result is not MISSING:
            self.result = result
        await self.manager.end(self, code=EndCode.ENDED, reason=reason)

    def _unhandled(self, kind: str) -> bool:
        _log.warning(
            "Session %s (%s) has no handler for a %s; override handle_%s",
            self.id,
            self.session_type,
            kind,
            kind.replace(" ", "_"),
        )
        return False

    def __repr__(self) -> str:
        state = self.end_code.value if self.end_code is not None else "live"
        return f"<{type(self).__name__} id={self.id} owner={self.owner_id} {state}>"
