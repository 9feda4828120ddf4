"""The state of the offline Discord: one guild, its people and channels, messages sent.

:class:`OfflineWorld` is the single source of truth that both the REST server (what
the bot does) and the facade (what users do) read and change.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from typing import TYPE_CHECKING

import discord

from nyx_sessions.testing import payloads
from nyx_sessions.testing.components import walk_components
from nyx_sessions.testing.records import (
    OfflineChannel,
    OfflineMessage,
    OfflineRole,
    OfflineUser,
    RecordedFile,
    RecordedRequest,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from nyx_sessions.clock import Clock
    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.records import InteractionResult

__all__ = ["DEFAULT_EVERYONE_PERMISSIONS", "OfflineWorld"]

DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    add_reactions=True,
    embed_links=True,
    attach_files=True,
    use_external_emojis=True,
    use_application_commands=True,
    create_instant_invite=True,
    change_nickname=True,
    connect=True,
    speak=True,
)
"""The permissions of @everyone in a new offline guild."""

_EPHEMERAL = 1 << 6
_LOADING = 1 << 7
# The only flags that an edit may change: SUPPRESS_EMBEDS and IS_COMPONENTS_V2.
_EDITABLE_FLAGS = (1 << 2) | (1 << 15)


class OfflineWorld:
    """One application, its bot user, one guild and everything the bot sent."""

    def __init__(
        self, *, clock: Clock, bot_name: str, bot_permissions: discord.Permissions
    ) -> None:
        self.clock = clock
        self.new_id = payloads.SnowflakeFactory()
        self.application_id = self.new_id()
        self.bot = OfflineUser(self.new_id(), bot_name, bot=True)
        self.owner = OfflineUser(self.new_id(), "guild-owner", is_member=False)
        self.guild_id = self.new_id()
        self.guild_name = "Offline Guild"
        self.users: dict[int, OfflineUser] = {}
        self.roles: dict[int, OfflineRole] = {}
        self.channels: dict[int, OfflineChannel] = {}
        self.dm_channels: dict[int, OfflineChannel] = {}
        self.joined_at: dict[int, str] = {}
        self.messages: dict[int, OfflineMessage] = {}
        self.interactions: dict[int, InteractionResult] = {}
        self.tokens: dict[str, InteractionResult] = {}
        self.commands: dict[int | None, list[Payload]] = {}
        self.requests: list[RecordedRequest] = []
        self._request_waiters: list[
            tuple[Callable[[RecordedRequest], bool], asyncio.Future[RecordedRequest]]
        ] = []

        self.everyone = OfflineRole(
            self.guild_id, "@everyone", DEFAULT_EVERYONE_PERMISSIONS, position=0
        )
        self.roles[self.everyone.id] = self.everyone
        bot_role = OfflineRole(self.new_id(), bot_name, bot_permissions, 1, bot_id=self.bot.id)
        self.roles[bot_role.id] = bot_role
        self.bot.role_ids.append(bot_role.id)
        self.add_user(self.bot)

    # -- the guild -------------------------------------------------------------

    def add_user(self, user: OfflineUser) -> OfflineUser:
        """Make ``user`` known (and a member when ``user.is_member``)."""
        self.users[user.id] = user
        if user.is_member:
            self.joined_at[user.id] = payloads.iso_timestamp()
        return user

    def add_role(self, name: str, permissions: discord.Permissions) -> OfflineRole:
        """Create a role above the others."""
        position = max(role.position for role in self.roles.values()) + 1
        role = OfflineRole(self.new_id(), name, permissions, position)
        self.roles[role.id] = role
        return role

    def add_channel(self, name: str, channel_type: discord.ChannelType) -> OfflineChannel:
        """Create a guild channel below the others."""
        position = sum(1 for channel in self.channels.values() if channel.guild_id is not None)
        channel = OfflineChannel(self.new_id(), name, channel_type, position, self.guild_id)
        self.channels[channel.id] = channel
        return channel

    def member_permissions(self, user: OfflineUser) -> int:
        """Return the permissions of ``user`` in channels, as interactions carry them."""
        if user.permissions is not None:
            return user.permissions.value
        if user.id == self.owner.id:
            return discord.Permissions.all().value
        value = self.everyone.permissions.value
        for role_id in user.role_ids:
            value |= self.roles[role_id].permissions.value
        if value & discord.Permissions(administrator=True).value:
            return discord.Permissions.all().value
        return value

    def member_payload(self, user: OfflineUser, *, with_user: bool = True) -> Payload:
        """Return the member object of ``user``, with its permissions."""
        return payloads.member_payload(
            user,
            joined_at=self.joined_at[user.id],
            permissions=self.member_permissions(user),
            with_user=with_user,
        )

    def member_event(self, user: OfflineUser) -> Payload:
        """Return the ``GUILD_MEMBER_ADD``/``_UPDATE`` payload of ``user``."""
        return {**self.member_payload(user), "guild_id": str(self.guild_id)}

    def guild_payload(self) -> Payload:
        """Return the guild with roles, channels and members, as ``GUILD_CREATE`` has it."""
        members = [
            payloads.member_payload(user, joined_at=self.joined_at[user.id])
            for user in self.users.values()
            if user.is_member
        ]
        return payloads.guild_payload(
            guild_id=self.guild_id,
            name=self.guild_name,
            owner_id=self.owner.id,
            roles=list(self.roles.values()),
            channels=list(self.channels.values()),
            members=members,
        )

    def channel_payload(
        self, channel: OfflineChannel, *, permissions: int | None = None
    ) -> Payload:
        """Return the channel object of ``channel``; DM channels list their recipient."""
        recipients = []
        if channel.recipient_id is not None:
            recipients.append(self.users[channel.recipient_id])
        return payloads.channel_payload(channel, recipients=recipients, permissions=permissions)

    def dm_channel(self, user: OfflineUser) -> OfflineChannel:
        """Return the DM channel between the bot and ``user``, made on first use."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = OfflineChannel(
                self.new_id(), "", discord.ChannelType.private, recipient_id=user.id
            )
            self.dm_channels[user.id] = channel
            self.channels[channel.id] = channel
        return channel

    def interaction_payload(
        self,
        user: OfflineUser,
        interaction_type: int,
        data: Payload | None,
        *,
        channel: OfflineChannel,
        dm: bool,
        message: OfflineMessage | None,
    ) -> Payload:
        """Return an ``INTERACTION_CREATE`` payload; ``dm`` uses the user's DM channel."""
        if dm:
            channel = self.dm_channel(user)
        permissions = None if dm else self.member_permissions(user)
        return payloads.interaction_payload(
            interaction_id=self.new_id(),
            application_id=self.application_id,
            interaction_type=interaction_type,
            token=f"offline-{self.new_id():x}",
            data=data,
            channel=self.channel_payload(channel, permissions=permissions),
            guild_id=None if dm else self.guild_id,
            member=None if dm else self.member_payload(user),
            user=user,
            app_permissions=self.member_permissions(self.bot),
            message=copy.deepcopy(message.payload) if message is not None else None,
        )

    def add_interaction(self, result: InteractionResult) -> None:
        """Remember an interaction that was fed, by id and by token."""
        self.interactions[result.id] = result
        self.tokens[result.token] = result

    # -- messages --------------------------------------------------------------

    def create_message(
        self,
        channel_id: int,
        body: Payload,
        files: list[RecordedFile],
        *,
        message_type: int = 0,
        interaction: InteractionResult | None = None,
        extra_flags: int = 0,
    ) -> OfflineMessage:
        """Store a message that the bot sent and return it."""
        body = dict(body)
        body["components"] = self._with_component_ids(body.get("components") or [])
        metadata = None
        if interaction is not None:
            user = interaction.payload.get("member", {}).get("user") or interaction.payload["user"]
            metadata = {
                "id": interaction.payload["id"],
                "type": interaction.payload["type"],
                "user": user,
                "authorizing_integration_owners": interaction.payload[
                    "authorizing_integration_owners"
                ],
            }
        data = payloads.message_payload(
            message_id=self.new_id(),
            channel_id=channel_id,
            author=self.bot,
            body=body,
            message_type=message_type,
            application_id=self.application_id if interaction is not None else None,
            interaction=metadata,
            attachments=self._attachments([], body, files),
        )
        flags = int(body.get("flags") or 0)
        data["flags"] = (flags & ~_LOADING) | extra_flags
        if channel_id in self.channels and self.channels[channel_id].guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        message = OfflineMessage(
            data, interaction_id=interaction.id if interaction is not None else None
        )
        self.messages[message.id] = message
        return message

    def edit_message(
        self, message: OfflineMessage, body: Payload, files: list[RecordedFile]
    ) -> None:
        """Apply an edit-message request ``body`` to ``message``."""
        old = message.payload
        new = copy.deepcopy(old)
        if "content" in body:
            new["content"] = body["content"] or ""
        if "embeds" in body:
            new["embeds"] = list(body["embeds"] or [])
        if "components" in body:
            new["components"] = self._with_component_ids(body["components"] or [])
        if "poll" in body and body["poll"] is not None:
            new["poll"] = body["poll"]
        if "attachments" in body or files:
            new["attachments"] = self._attachments(old.get("attachments") or [], body, files)
        flags = int(old.get("flags") or 0) & ~_LOADING
        if body.get("flags") is not None:
            flags = (flags & ~_EDITABLE_FLAGS) | (int(body["flags"]) & _EDITABLE_FLAGS)
        new["flags"] = flags
        new["edited_timestamp"] = payloads.iso_timestamp()
        message.history.append(old)
        message.payload = new

    def _with_component_ids(self, components: list[Payload]) -> list[Payload]:
        # Discord numbers every component that arrives without an ``id``.
        components = copy.deepcopy(list(components))
        walked = list(walk_components(components))
        used = {c["id"] for c in walked if isinstance(c.get("id"), int)}
        numbers = (n for n in itertools.count(1) if n not in used)
        for component in walked:
            if component.get("id") is None:
                component["id"] = next(numbers)
        return components

    def _attachments(
        self, existing: list[Payload], body: Payload, files: list[RecordedFile]
    ) -> list[Payload]:
        kept_ids = None
        if "attachments" in body:
            kept_ids = {str(a.get("id")) for a in body["attachments"] or []}
        result = [a for a in existing if kept_ids is None or a["id"] in kept_ids]
        described = {str(a.get("id")): a for a in body.get("attachments") or []}
        for index, file in enumerate(files):
            attachment_id = str(self.new_id())
            filename = file.filename or described.get(str(index), {}).get("filename") or "file"
            url = f"https://cdn.offline.invalid/attachments/{attachment_id}/{filename}"
            result.append(
                {
                    "id": attachment_id,
                    "filename": filename,
                    "size": len(file.data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": file.content_type,
                    "description": described.get(str(index), {}).get("description"),
                }
            )
        return result

    # -- requests --------------------------------------------------------------

    def record_request(self, request: RecordedRequest) -> None:
        """Append ``request`` to the log and wake whoever waits for one like it."""
        self.requests.append(request)
        remaining = []
        for predicate, future in self._request_waiters:
            if future.done():
                continue
            try:
                matched = predicate(request)
            except Exception as exc:
                future.set_exception(exc)
                continue
            if matched:
                future.set_result(request)
            else:
                remaining.append((predicate, future))
        self._request_waiters = remaining

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float,  # noqa: ASYNC109 - the public API takes a timeout
    ) -> RecordedRequest:
        """Return the first recorded request that matches, waiting for it if need be."""
        for request in self.requests:
            if predicate(request):
                return request
        future: asyncio.Future[RecordedRequest] = asyncio.get_running_loop().create_future()
        self._request_waiters.append((predicate, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"no matching request within {timeout} s") from None
        finally:
            with contextlib.suppress(ValueError):
                self._request_waiters.remove((predicate, future))

    def __repr__(self) -> str:
        return (
            f"<OfflineWorld guild={self.guild_id} users={len(self.users)} "
            f"messages={len(self.messages)} requests={len(self.requests)}>"
        )
