"""The offline Discord: a real discord.py client, a fake Discord on 127.0.0.1.

:class:`OfflineDiscord` logs a real :class:`discord.Client` (or your
:class:`~discord.ext.commands.Bot`) in against the REST server of
:mod:`nyx_sessions.testing.server`, puts its guild into the client's cache through
discord.py's own parsing, and feeds gateway ``INTERACTION_CREATE`` payloads through
discord.py's own ``INTERACTION_CREATE`` parser, exactly as the gateway would. No
websocket is opened.

Examples
--------
>>> async with OfflineDiscord(bot) as offline:  # doctest: +SKIP
...     alice = offline.add_member("alice")
...     res = await offline.slash_command(alice, "counter", options={"n": 3})
...     res = await offline.click(alice, res.message, label="+1")
...     assert res.message.content == "4"
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ClassVar, TypeVar

import discord
from discord.http import Route

from nyx_sessions.clock import LoopClock
from nyx_sessions.testing import payloads
from nyx_sessions.testing.components import BUTTON, SELECT_TYPES, find_component
from nyx_sessions.testing.interactions import (
    button_data,
    command_data,
    find_modal,
    modal_submit_data,
    select_data,
)
from nyx_sessions.testing.messages import deliver_message, message_create_payload
from nyx_sessions.testing.records import (
    InteractionResult,
    OfflineChannel,
    OfflineMessage,
    OfflineRole,
    OfflineUser,
)
from nyx_sessions.testing.server import OfflineServer
from nyx_sessions.testing.started import StartedSessions
from nyx_sessions.testing.world import OfflineWorld

SessionT = TypeVar("SessionT")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType
    from typing import Self

    from nyx_sessions.clock import Clock
    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.records import RecordedRequest

__all__ = ["OfflineDiscord"]

MessageRef = OfflineMessage | discord.abc.Snowflake | int
"""A message of the offline Discord: its record, a discord.py message, or its id."""

_BUTTONS = frozenset({BUTTON})


class OfflineDiscord:
    """A fake Discord for one bot: REST on 127.0.0.1, interactions fed in-process.

    Parameters
    ----------
    client:
        The client or bot to log in; ``None`` makes a
        ``discord.Client(intents=discord.Intents.default())`` (the guilds intent
        included, as a real bot has). It is logged in (so its ``setup_hook`` runs) on
        entry and closed on exit.
    ack_window:
        Seconds within which the first answer to an interaction must arrive; a later
        one gets Discord's 404 "Unknown interaction" (10062).
    clock:
        The time source of the ack window, the 15-minute token lifetime and the
        request log; default: the real clock. A
        :class:`~nyx_sessions.testing.ManualClock` makes them controllable.
    bot_name:
        The bot user's name.
    bot_permissions:
        The permissions of the bot's managed role; default: every channel permission.

    Attributes
    ----------
    client:
        The client that interactions go to unless told otherwise.
    clients:
        Every client logged in (see :meth:`login`), closed on exit.
    channel:
        The default text channel, ``#general``.
    world:
        The state of the offline Discord: users, roles, channels, messages, requests.
    server:
        The REST server.
    """

    _active: ClassVar[OfflineDiscord | None] = None

    def __init__(
        self,
        client: discord.Client | None = None,
        *,
        ack_window: float = 3.0,
        clock: Clock | None = None,
        bot_name: str = "Nyx Test Bot",
        bot_permissions: discord.Permissions | None = None,
    ) -> None:
        if client is None:
            client = discord.Client(intents=discord.Intents.default())
        self.client: discord.Client = client
        self.world = OfflineWorld(
            clock=clock or LoopClock(),
            bot_name=bot_name,
            bot_permissions=bot_permissions or discord.Permissions.all_channel(),
        )
        self.server = OfflineServer(self.world, ack_window=ack_window)
        self.clients: list[discord.Client] = []
        self.started = StartedSessions()
        self.channel: OfflineChannel = self.add_channel("general")
        self._saved_base: str | None = None
        self._state = "new"

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("an OfflineDiscord can be entered only once")
        if OfflineDiscord._active is not None:
            raise RuntimeError(
                "another OfflineDiscord is active; use offline.login(client) to add a client"
            )
        self._state = "open"
        OfflineDiscord._active = self
        self._saved_base = Route.BASE
        try:
            # Route computes its URL from the class attribute, for REST, interaction
            # callbacks and webhooks alike.
            Route.BASE = await self.server.start()
            await self.login(self.client)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every client, stop the server and restore ``Route.BASE``; idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        try:
            while self.clients:
                await self.logout(self.clients[-1])
            await self.server.close()
        finally:
            if self._saved_base is not None:
                Route.BASE = self._saved_base
            if OfflineDiscord._active is self:
                OfflineDiscord._active = None

    async def login(self, client: discord.Client) -> None:
        """Log ``client`` in as the bot and fill its cache with the guild.

        A second client stands for a second process (or a restart) of the same bot.
        """
        try:
            await client.login("offline-token")
        except BaseException:
            await client.close()
            raise
        # Without a gateway there is no GUILD_CREATE; the guild goes through the same
        # Guild parser, minus the member chunking that needs a websocket.
        client._connection._add_guild_from_data(self.world.guild_payload())  # type: ignore[arg-type]
        self.clients.append(client)
        self.started.watch(client)

    async def logout(self, client: discord.Client) -> None:
        """Close ``client`` and stop delivering to it."""
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        self.started.unwatch(client)
        await client.close()

    def _gateway(self, event: str, data: Payload) -> None:
        # The gateway hands every event to ConnectionState.parsers; so do we.
        for client in self.clients:
            client._connection.parsers[event](data)

    # -- the guild -------------------------------------------------------------

    @property
    def guild(self) -> discord.Guild:
        """The offline guild, from the client's cache."""
        guild = self.client.get_guild(self.world.guild_id)
        if guild is None:
            raise RuntimeError("the client is not logged in to the offline Discord")
        return guild

    @property
    def bot(self) -> OfflineUser:
        """The bot user."""
        return self.world.bot

    @property
    def everyone(self) -> OfflineRole:
        """The @everyone role."""
        return self.world.everyone

    def add_role(self, name: str, *, permissions: discord.Permissions | None = None) -> OfflineRole:
        """Create a role above the others."""
        role = self.world.add_role(name, permissions or discord.Permissions.none())
        role_create = {"guild_id": str(self.world.guild_id), "role": payloads.role_payload(role)}
        self._gateway("GUILD_ROLE_CREATE", role_create)
        return role

    def add_member(
        self,
        name: str,
        *,
        roles: Iterable[OfflineRole] = (),
        permissions: discord.Permissions | None = None,
    ) -> OfflineUser:
        """Add a guild member.

        Parameters
        ----------
        name:
            The username.
        roles:
            The member's roles.
        permissions:
            The permissions Discord reports for the member in channels
            (``interaction.permissions``); default: from @everyone and ``roles``.
        """
        user = OfflineUser(
            self.world.new_id(), name, [role.id for role in roles], permissions=permissions
        )
        self.world.add_user(user)
        self._gateway("GUILD_MEMBER_ADD", self.world.member_event(user))
        return user

    def add_user(self, name: str) -> OfflineUser:
        """Add a user who is not in the guild: their interactions come from DMs."""
        return self.world.add_user(OfflineUser(self.world.new_id(), name, is_member=False))

    def set_roles(self, member: OfflineUser, roles: Iterable[OfflineRole]) -> None:
        """Replace the roles of ``member``."""
        member.role_ids = [role.id for role in roles]
        self._gateway("GUILD_MEMBER_UPDATE", self.world.member_event(member))

    def add_channel(
        self, name: str, *, channel_type: discord.ChannelType = discord.ChannelType.text
    ) -> OfflineChannel:
        """Create a guild channel below the others."""
        channel = self.world.add_channel(name, channel_type)
        self._gateway("CHANNEL_CREATE", self.world.channel_payload(channel))
        return channel

    # -- what the bot did --------------------------------------------------------

    @property
    def messages(self) -> list[OfflineMessage]:
        """Every message the bot sent, ephemeral and deleted ones too, oldest first."""
        return list(self.world.messages.values())

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST call, in arrival order."""
        return self.world.requests

    @property
    def interactions(self) -> list[InteractionResult]:
        """Every interaction fed, oldest first."""
        return list(self.world.interactions.values())

    def message(self, message: MessageRef) -> OfflineMessage:
        """Return the record of ``message``.

        Raises
        ------
        LookupError
            The bot never sent such a message.
        """
        if isinstance(message, OfflineMessage):
            return message
        message_id = message if isinstance(message, int) else message.id
        found = self.world.messages.get(message_id)
        if found is None:
            raise LookupError(f"the bot sent no message {message_id}")
        return found

    async def wait_for_session(
        self,
        session_type: type[SessionT],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SessionT:
        """Return the session of ``session_type`` that a command started.

        Sessions are handed out oldest first, each once: after two commands, two calls
        return the first session, then the second. Waits for one when none is there.

        Raises
        ------
        TimeoutError
            No such session started within ``timeout`` seconds.
        """
        return await self.started.wait_for(session_type, timeout)

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline per call reads best in tests
    ) -> RecordedRequest:
        """Return the first recorded request that matches ``predicate``, waiting for one.

        Raises
        ------
        TimeoutError
            None arrived within ``timeout`` seconds.
        """
        return await self.world.wait_for_request(predicate, timeout)

    # -- what users do -----------------------------------------------------------

    async def slash_command(
        self,
        user: OfflineUser,
        name: str,
        options: Mapping[str, object] | None = None,
        *,
        channel: OfflineChannel | None = None,
        dm: bool = False,
        client: discord.Client | None = None,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionResult:
        """Invoke the slash command ``name`` (``"group sub"`` for subcommands).

        Option types come from the command in the client's tree when it has it, else
        from the values; users, roles and channels may be given as records,
        discord.py objects or ids. Users who are not members always use DMs.
        """
        client = client or self.client
        in_guild = user.is_member and not dm
        # The CommandTree that discord.py routes commands to (private, but the only link).
        tree = client._connection._command_tree
        data = command_data(self.world, tree, name, options or {}, invoker=user, in_guild=in_guild)
        payload = self.make_interaction_payload(
            user,
            discord.InteractionType.application_command,
            data,
            channel=channel,
            dm=not in_guild,
        )
        return await self.feed(payload, client=client, wait=wait, timeout=timeout)

    async def click(
        self,
        user: OfflineUser,
        message: MessageRef,
        *,
        custom_id: str | None = None,
        label: str | None = None,
        client: discord.Client | None = None,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionResult:
        """Click the button of ``message`` with this custom id and/or label."""
        record = self._live_message(message)
        button = find_component(record.components, custom_id=custom_id, label=label, types=_BUTTONS)
        return await self._component(user, record, button_data(button), client, wait, timeout)

    async def select(
        self,
        user: OfflineUser,
        message: MessageRef,
        values: Iterable[object],
        *,
        custom_id: str | None = None,
        client: discord.Client | None = None,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionResult:
        """Choose ``values`` in a select menu of ``message`` (the only one, or ``custom_id``).

        String selects take option values; user, role, mentionable and channel selects
        take records, discord.py objects or ids, and get their ``resolved`` data.
        """
        record = self._live_message(message)
        select = find_component(record.components, custom_id=custom_id, types=SELECT_TYPES)
        in_guild = self.world.channels[record.channel_id].guild_id is not None
        data = select_data(self.world, select, values, invoker=user, in_guild=in_guild)
        return await self._component(user, record, data, client, wait, timeout)

    async def submit_modal(
        self,
        user: OfflineUser,
        modal: InteractionResult | Payload | str,
        values: Mapping[str, object] | None = None,
        *,
        client: discord.Client | None = None,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionResult:
        """Submit a modal the bot showed, with ``values`` by field custom id.

        ``modal`` is the result whose response was the modal, the modal payload, or its
        custom id (the latest modal with it). A string fills a text input, a list picks
        in a select, a boolean ticks a checkbox. A custom id that the bot never showed
        submits ``values`` as text inputs, from the default channel.
        """
        shown, opener = find_modal(self.world, modal, values or {})
        channel, source = self.channel, None
        if opener is not None:
            channel = self.world.channels[int(opener.payload["channel_id"])]
            source = opener.source_message
        in_guild = channel.guild_id is not None
        data = modal_submit_data(self.world, shown, values or {}, invoker=user, in_guild=in_guild)
        payload = self.make_interaction_payload(
            user,
            discord.InteractionType.modal_submit,
            data,
            channel=channel,
            dm=not in_guild,
            message=source,
        )
        return await self.feed(payload, client=client, wait=wait, timeout=timeout)

    async def message_command(
        self,
        user: OfflineUser,
        content: str,
        *,
        channel: OfflineChannel | None = None,
        client: discord.Client | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> OfflineMessage | None:
        """Post ``content`` as ``user``: a prefix command (``"!counter"``) for a bot.

        Waits until the command completed or failed, or the bot posted in the channel
        (a command that goes on waiting for a session, say). The client needs the
        message content intent, as with Discord.

        Returns
        -------
        OfflineMessage | None
            The bot's first message in the channel in answer, or None.

        Raises
        ------
        ValueError
            The client lacks the message content intent.
        discord.ext.commands.CommandError
            The command failed.
        """
        client = client or self.client
        if channel is None or not user.is_member:
            channel = self.channel if user.is_member else self.world.dm_channel(user)
        payload = message_create_payload(self.world, user, channel, content)
        posted = await deliver_message(self.world, client, payload, timeout)
        if posted is None or not isinstance(posted.response, dict):
            return None
        return self.message(int(posted.response["id"]))

    async def _component(
        self,
        user: OfflineUser,
        message: OfflineMessage,
        data: Payload,
        client: discord.Client | None,
        wait: bool,
        timeout: float,  # noqa: ASYNC109
    ) -> InteractionResult:
        channel = self.world.channels[message.channel_id]
        payload = self.make_interaction_payload(
            user,
            discord.InteractionType.component,
            data,
            channel=channel,
            dm=channel.guild_id is None,
            message=message,
        )
        return await self.feed(payload, client=client, wait=wait, timeout=timeout)

    def _live_message(self, message: MessageRef) -> OfflineMessage:
        record = self.message(message)
        if record.deleted:
            raise LookupError(f"message {record.id} was deleted")
        return record

    # -- low level ---------------------------------------------------------------

    def make_interaction_payload(
        self,
        user: OfflineUser,
        type: discord.InteractionType | int,
        data: Payload | None = None,
        *,
        channel: OfflineChannel | None = None,
        dm: bool = False,
        message: OfflineMessage | None = None,
    ) -> Payload:
        """Build an ``INTERACTION_CREATE`` payload from ``user`` in ``channel``.

        ``dm`` (or a user who is not a member) puts it in the user's DM channel;
        ``message`` is the message whose component was used.
        """
        if channel is None or channel.guild_id is None:
            channel = self.channel
        return self.world.interaction_payload(
            user,
            type if isinstance(type, int) else type.value,
            data,
            channel=channel,
            dm=dm or not user.is_member,
            message=message,
        )

    async def feed(
        self,
        payload: Payload,
        *,
        client: discord.Client | None = None,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionResult:
        """Deliver an ``INTERACTION_CREATE`` payload to the client, as the gateway does.

        Parameters
        ----------
        payload:
            The payload, e.g. from :meth:`make_interaction_payload`.
        client:
            The client (process) that receives it; default: :attr:`client`.
        wait:
            Wait until the bot acknowledges the interaction (or ``timeout`` passes).
        timeout:
            Seconds to wait for the acknowledgement; an unanswered result is returned.
        """
        client = client or self.client
        source_id = int(payload["message"]["id"]) if "message" in payload else None
        result = InteractionResult(
            payload,
            fed_at=self.world.clock.now(),
            source_message=self.world.messages.get(source_id) if source_id else None,
        )
        self.world.add_interaction(result)
        # The parser creates the Interaction and dispatches "interaction" synchronously, so
        # a listener with timeout=0 catches that very object; awaiting it after a failed
        # parse removes the listener.
        waiter = client.wait_for("interaction", check=lambda i: i.id == result.id, timeout=0)
        try:
            client._connection.parsers["INTERACTION_CREATE"](payload)
        except BaseException:
            with contextlib.suppress(TimeoutError):
                await waiter
            raise
        result._set_interaction(await waiter)
        if wait:
            with contextlib.suppress(TimeoutError):
                await result.wait_answered(timeout)
        return result

    def __repr__(self) -> str:
        return f"<OfflineDiscord state={self._state} base={self.server.base_url!r} {self.world!r}>"
