"""Sessions: the :class:`Session` protocol and :class:`AbstractSession`, the class to subclass."""

from __future__ import annotations

import asyncio
import logging
import secrets
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, runtime_checkable

import discord
from discord.ext import commands

from . import answers
from ._types import ResultT, ResultT_co
from .actions import collect_actions
from .codecs import CustomIdBuilder, SessionCustomIdCodec, is_valid_session_id
from .errors import MalformedCustomIdError, SessionStateError
from .inputs import custom_id_of
from .responders import answer_ephemeral

if TYPE_CHECKING:
    from .end import EndCode, SessionEndData
    from .filters import SessionStartFilter, SessionUpdateFilter
    from .manager import SessionManager

__all__ = ["AbstractSession", "Session", "new_session_id"]

_log = logging.getLogger("nyx_sessions")

_DEFAULT_CODEC = SessionCustomIdCodec()
_STARTED_FROM = (discord.Interaction, commands.Context)
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
        has returned (unless the manager keeps it), after a restore, and for a session
        started from a prefix command's context. (:class:`AbstractSession` types it
        without None and raises a clear error instead where it is gone.)
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
    owner_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    data: dict[str, Any]
    result: Any
    end_code: EndCode | None

    @property
    def manager(self) -> SessionManager | None:
        """The manager serving the session; None before :meth:`SessionManager.start`."""
        ...

    @manager.setter
    def manager(self, manager: SessionManager | None) -> None: ...

    @property
    def start_interaction(self) -> discord.Interaction[Any] | None:
        """The interaction that started the session, while it is kept."""
        ...

    @start_interaction.setter
    def start_interaction(self, interaction: discord.Interaction[Any] | None) -> None: ...

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
    def end_promise(self) -> asyncio.Future[SessionEndData[Any]]:
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

    async def on_timeout(self) -> bool:
        """Decide, at the session's deadline, whether it expires (False) or goes on (True)."""
        ...

    def get_result(self) -> ResultT_co | None:
        """Return the session's result."""
        ...


class AbstractSession(ABC, Generic[ResultT]):
    """Base class for sessions: subclass it, implement :meth:`start` and the handlers.

    Handlers are methods marked with :func:`~nyx_sessions.action`, one per action named
    in a custom id (:meth:`action_id`); or overrides of :meth:`handle_button`,
    :meth:`handle_select_menu` and :meth:`handle_modal`.

    Parameters
    ----------
    interaction:
        What starts the session: an interaction (usually a slash command) or the
        :class:`~discord.ext.commands.Context` of a prefix or hybrid command. It gives
        the session its owner, guild and channel.
    session_id:
        The session's id; a random, unguessable one by default.

    Attributes
    ----------
    id:
        The session's id: random and unguessable unless given.
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
    unknown_action_message: ClassVar[str] = "This does nothing any more."
    """The ephemeral answer to a custom id that names no action of the session."""
    _actions: ClassVar[dict[str, str]] = {}

    __slots__ = (
        "_end_promise",
        "_manager",
        "_restored",
        "_start_context",
        "_start_interaction",
        "channel_id",
        "data",
        "end_code",
        "guild_id",
        "id",
        "message_id",
        "owner_id",
        "result",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "session_type" not in cls.__dict__:
            cls.session_type = f"{cls.__module__}.{cls.__qualname__}"
        cls._actions = collect_actions(cls)

    def __init__(
        self,
        interaction: discord.Interaction[Any] | commands.Context[Any],
        *,
        session_id: str | None = None,
    ) -> None:
        if session_id is None:
            session_id = new_session_id()
        elif not is_valid_session_id(session_id):
            raise ValueError(
                f"invalid session id {session_id!r}: use 1 to 64 characters of A-Z a-z 0-9 _ -"
            )
        if not isinstance(interaction, _STARTED_FROM):
            raise TypeError(
                f"a session starts from a discord.Interaction or a commands.Context, "
                f"not {type(interaction).__name__}"
            )
        self.id: str = session_id
        self._manager: SessionManager | None = None
        self._restored = False
        self.message_id: int | None = None
        if isinstance(interaction, commands.Context):
            # A hybrid command run as a slash command carries its interaction.
            self._start_interaction: discord.Interaction[Any] | None = interaction.interaction
            self._start_context: commands.Context[Any] | None = interaction
            self.owner_id: int = interaction.author.id
            self.guild_id: int | None = interaction.guild.id if interaction.guild else None
            self.channel_id: int | None = interaction.channel.id
        else:
            self._start_interaction = interaction
            self._start_context = None
            self.owner_id = interaction.user.id
            # The cached guild's id where there is one: one int object for every session
            # in the guild, rather than the one each interaction parsed.
            guild = interaction.guild
            self.guild_id = guild.id if guild is not None else interaction.guild_id
            self.channel_id = interaction.channel_id
        self.data: dict[str, Any] = {}
        self.result: ResultT | None = None
        self.end_code: EndCode | None = None
        self._end_promise: asyncio.Future[SessionEndData[ResultT]] | None = None

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

        A restored session has no start interaction: the interaction token is not
        kept. Keep everything a session needs in :attr:`data`.
        """
        self = cls.__new__(cls)
        self.id = session_id
        self._manager = None
        self._restored = True
        self._start_interaction = None
        self._start_context = None
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

    if TYPE_CHECKING:
        # Handlers only ever run once the manager has set it, so handlers read it
        # without a None check; the manager itself sees None before start.
        @property
        def manager(self) -> SessionManager:
            """The manager that started (or restored) the session."""

    else:

        @property
        def manager(self) -> SessionManager | None:
            """The manager that started (or restored) the session; None before start."""
            return self._manager

    @manager.setter
    def manager(self, manager: SessionManager | None) -> None:
        self._manager = manager

    @property
    def start_interaction(self) -> discord.Interaction[Any]:
        """The interaction that started the session, for :meth:`start`.

        It is dropped once ``start()`` has returned (unless the manager was made with
        ``keep_start_interaction=True``); a restored session never has it. A session
        started from a prefix command's context has none: read it there only as the
        first argument of :meth:`reply`, which then sends through the context.

        Raises
        ------
        SessionStateError
            The interaction is gone (after start, or after a restore).
        """
        interaction = self._start_interaction
        if interaction is None and self._start_context is None:
            if self._restored:
                why = "was restored from the store, where interaction tokens are not kept"
            else:
                why = "has returned from start(), which drops it"
            raise SessionStateError(
                f"session {self.id} has no start interaction: it {why}. Answer the "
                "interaction at hand, or edit the session's message with self.message"
            )
        # None only for a prefix command's session during start(): reply() takes it.
        return interaction  # type: ignore[return-value]

    @start_interaction.setter
    def start_interaction(self, interaction: discord.Interaction[Any] | None) -> None:
        self._start_interaction = interaction
        if interaction is None:
            self._start_context = None

    @property
    def start_context(self) -> commands.Context[Any] | None:
        """The command context that started the session, during :meth:`start`; else None."""
        return self._start_context

    @property
    def custom_id(self) -> CustomIdBuilder:
        """A fresh custom-id builder for this session, on every access."""
        codec = self._manager.codec if self._manager is not None else _DEFAULT_CODEC
        return codec.create_builder(self.id)

    def action_id(self, name: str, *tokens: str | int) -> str:
        """Return the custom id that calls the action ``name`` with ``tokens``.

        Raises
        ------
        CustomIdTooLongError
            The id would be longer than Discord's 100 characters.
        """
        builder = self.custom_id.push(name)
        for token in tokens:
            builder.push(token)
        return builder.build()

    def action_of(self, interaction: discord.Interaction[Any]) -> list[str]:
        """Return the action name and its arguments that ``interaction``'s custom id carries.

        The inverse of :meth:`action_id`: ``action_id("page", 3)`` comes back as
        ``["page", "3"]``. Empty for an interaction without a custom id of this
        session's codec (a malformed one is logged).

        Examples
        --------
        >>> answer = await self.wait_for("vote")  # doctest: +SKIP
        >>> _, choice = self.action_of(answer)  # doctest: +SKIP
        """
        custom_id = custom_id_of(interaction)
        if not custom_id:
            return []
        codec = self._manager.codec if self._manager is not None else _DEFAULT_CODEC
        try:
            return codec.create_iterator(custom_id).get_tokens()
        except MalformedCustomIdError as error:
            _log.warning("Session %s got a malformed custom id: %s", self.id, error)
            return []

    @property
    def end_promise(self) -> asyncio.Future[SessionEndData[ResultT]]:
        """A future that resolves to :class:`~nyx_sessions.SessionEndData` when the session ends.

        It resolves whatever the reason (stopped, expired, cancelled, rejected, failed,
        shut down), also when the session ends in another process sharing the store. It
        lives in this process only: after a restart nobody awaits it (see the END event).
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
        manager = self._manager
        if manager is None or manager.client is None or self.channel_id is None:
            return None
        return manager.client.get_partial_messageable(self.channel_id, guild_id=self.guild_id)

    @property
    def message(self) -> discord.PartialMessage | None:
        """The session's message, by id, so that ``end()`` can edit it after 15 minutes."""
        channel = self.channel
        if channel is None or self.message_id is None:
            return None
        return channel.get_partial_message(self.message_id)

    # -- answering -------------------------------------------------------------------------

    async def edit(self, interaction: discord.Interaction[Any] | None, **fields: Any) -> None:
        """Edit the message ``interaction``'s component is on, answered or not.

        ``response.edit_message`` before the interaction is acknowledged,
        ``edit_original_response`` after (the manager defers a slow handler's
        interaction). With None, the session's message is edited by id (:attr:`message`).
        ``fields`` are those of :meth:`discord.Message.edit`: ``content``, ``view``, ...
        """
        if interaction is not None:
            await answers.edit(interaction, **fields)
            return
        message = self.message
        if message is None:
            raise SessionStateError(f"session {self.id} has no known message to edit")
        await message.edit(**fields)

    async def reply(
        self, interaction: discord.Interaction[Any] | None, *args: Any, **fields: Any
    ) -> discord.Message | None:
        """Send a message: the interaction's response, or a follow-up once it was answered.

        With None (a session started from a prefix command, or an update with no
        interaction at hand), the message goes through the start context's
        ``ctx.send``, or to the session's channel. A message that carries the
        session's components becomes :attr:`message_id` when none is known yet.

        Returns
        -------
        discord.Message | None
            The message sent, when Discord returns it (an interaction's first response
            gives None).
        """
        sent = await answers.reply(
            interaction, *args, context=self._start_context, channel=self.channel, **fields
        )
        if sent is not None and self.message_id is None and "view" in fields:
            self.message_id = sent.id
        return sent

    # -- hooks -----------------------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None:
        """Send the session's first message: ``await self.reply(self.start_interaction, ...)``."""

    async def update(self, interaction: discord.Interaction[Any]) -> bool:
        """Dispatch ``interaction`` to the handler for its component type.

        Buttons go to :meth:`handle_button`, every kind of select menu to
        :meth:`handle_select_menu`, modal submits to :meth:`handle_modal`; by default
        each of those calls the :func:`~nyx_sessions.action` the custom id names.

        Returns
        -------
        bool
            True to refresh the session's TTL.
        """
        try:
            if interaction.type is _MODAL_SUBMIT:
                return await self.handle_modal(interaction)
            data: Any = interaction.data or {}
            component_type = data.get("component_type")
            if component_type == _BUTTON:
                return await self.handle_button(interaction)
            if type(component_type) is int and component_type in _SELECT_TYPES:
                return await self.handle_select_menu(interaction)
        except discord.InteractionResponded:
            answers.explain_already_answered(self.id, self.session_type, interaction)
            raise
        _log.warning(
            "Session %s (%s) got an interaction it cannot dispatch: type %s, component type %s",
            self.id,
            self.session_type,
            interaction.type,
            component_type,
        )
        return False

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle a button click; by default, call the action its custom id names."""
        return await self.dispatch_action(interaction)

    async def handle_select_menu(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle a select menu choice (any kind); by default, call the action it names."""
        return await self.dispatch_action(interaction)

    async def handle_modal(self, interaction: discord.Interaction[Any]) -> bool:
        """Handle a modal submit; by default, call the action its custom id names."""
        return await self.dispatch_action(interaction)

    async def dispatch_action(self, interaction: discord.Interaction[Any]) -> bool:
        """Call the :func:`~nyx_sessions.action` that ``interaction``'s custom id names.

        The tokens after the action's name are its arguments. Returns False when the
        action returned False, True when it returned True or nothing. An id that names no
        action of the session is answered with :attr:`unknown_action_message` (ephemeral) and
        logged.
        """
        tokens = self.action_of(interaction)
        method = self._actions.get(tokens[0]) if tokens else None
        if method is None:
            _log.warning(
                "Session %s (%s) has no action for custom id %r (actions: %s)",
                self.id,
                self.session_type,
                custom_id_of(interaction),
                ", ".join(sorted(self._actions)) or "none",
            )
            await answer_ephemeral(interaction, self.unknown_action_message)
            return False
        handled: bool | None = await getattr(self, method)(interaction, *tokens[1:])
        return handled is not False

    async def end(self) -> None:
        """Run when the session ends, for any reason; :attr:`end_code` tells which."""

    async def on_timeout(self) -> bool:
        """Run when the session's deadline passes, before it expires.

        Returns
        -------
        bool
            False (the default): the session expires now, and :meth:`end` runs. True:
            the session goes on, with its deadline refreshed from :attr:`ttl`.
        """
        return False

    def get_result(self) -> ResultT | None:
        """Return the session's result; :attr:`result` by default."""
        return self.result

    # -- ending ----------------------------------------------------------------------------

    async def stop(self, result: ResultT | _Missing = MISSING, reason: str | None = None) -> None:
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
        manager = self._manager
        if manager is None:
            raise SessionStateError(f"session {self.id} was never started")
        from .end import EndCode

        if not isinstance(result, _Missing):
            self.result = result
        await manager.end(self, code=EndCode.ENDED, reason=reason)

    def __repr__(self) -> str:
        state = self.end_code.value if self.end_code is not None else "live"
        return f"<{type(self).__name__} id={self.id} owner={self.owner_id} {state}>"
