"""Builders of the JSON payloads that Discord sends, in the shapes discord.py parses.

Every builder returns a fresh ``dict``; none of them keeps state except
:class:`SnowflakeFactory`. The fields that discord.py reads with ``data[...]`` (and so
requires) are always present: a user's ``discriminator`` and ``avatar``, a member's
``flags`` and ``roles``, a channel's ``name`` and ``position``, a message's ``type``,
``author``, ``timestamp``, ``mentions`` and ``components``, an interaction's
``attachment_size_limit``.
"""

from __future__ import annotations

import datetime
import itertools
import time
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from nyx_sessions.testing.records import OfflineChannel, OfflineRole, OfflineUser

__all__ = [
    "ATTACHMENT_SIZE_LIMIT",
    "Payload",
    "SnowflakeFactory",
    "app_info_payload",
    "channel_payload",
    "guild_payload",
    "interaction_payload",
    "iso_timestamp",
    "member_payload",
    "message_payload",
    "resolved_payload",
    "role_payload",
    "user_payload",
]

Payload = dict[str, Any]
"""A JSON object as Discord sends it."""

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
"""The upload limit that Discord reports on interactions in guilds without boosts."""

_DISCORD_EPOCH_MS = 1_420_070_400_000
# Interaction context types; discord.py 2.7 has no enum for them.
_CONTEXT_GUILD = 0
_CONTEXT_BOT_DM = 1


class SnowflakeFactory:
    """Unique, increasing snowflakes whose timestamp part is the current time."""

    __slots__ = ("_increment", "_last")

    def __init__(self) -> None:
        self._last = 0
        self._increment = itertools.count()

    def __call__(self) -> int:
        """Return a new snowflake, greater than every one returned before."""
        millis = int(time.time() * 1000) - _DISCORD_EPOCH_MS
        candidate = (millis << 22) | (next(self._increment) & 0xFFF)
        self._last = max(candidate, self._last + 1)
        return self._last

    def __repr__(self) -> str:
        return f"SnowflakeFactory(last={self._last})"


def iso_timestamp(at: datetime.datetime | None = None) -> str:
    """Format ``at`` (default: now) as Discord's ISO 8601 timestamps."""
    return (at or datetime.datetime.now(datetime.UTC)).isoformat()


def user_payload(user: OfflineUser) -> Payload:
    """Build a user object."""
    return {
        "id": str(user.id),
        "username": user.name,
        "discriminator": "0",
        "global_name": user.name,
        "avatar": None,
        "bot": user.bot,
        "public_flags": 0,
    }


def member_payload(
    user: OfflineUser,
    *,
    joined_at: str,
    permissions: int | None = None,
    with_user: bool = True,
) -> Payload:
    """Build a guild member object; ``permissions`` as interactions carry them."""
    data: Payload = {
        "roles": [str(role_id) for role_id in user.role_ids],
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "nick": None,
        "avatar": None,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user_payload(user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def role_payload(role: OfflineRole) -> Payload:
    """Build a role object."""
    data: Payload = {
        "id": str(role.id),
        "name": role.name,
        "permissions": str(role.permissions.value),
        "position": role.position,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "managed": role.bot_id is not None,
        "mentionable": False,
        "flags": 0,
    }
    if role.bot_id is not None:
        data["tags"] = {"bot_id": str(role.bot_id)}
    return data


def channel_payload(
    channel: OfflineChannel,
    *,
    recipients: list[OfflineUser] | None = None,
    permissions: int | None = None,
) -> Payload:
    """Build a channel object: a guild channel, or a DM channel with ``recipients``."""
    data: Payload = {"id": str(channel.id), "type": channel.type.value, "flags": 0}
    if channel.guild_id is None:
        data["recipients"] = [user_payload(user) for user in recipients or []]
        data["last_message_id"] = None
    else:
        data.update(
            guild_id=str(channel.guild_id),
            name=channel.name,
            position=channel.position,
            parent_id=None,
            topic=None,
            nsfw=False,
            rate_limit_per_user=0,
            last_message_id=None,
            permission_overwrites=[],
        )
        if channel.type in (discord.ChannelType.voice, discord.ChannelType.stage_voice):
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def guild_payload(
    *,
    guild_id: int,
    name: str,
    owner_id: int,
    roles: list[OfflineRole],
    channels: list[OfflineChannel],
    members: list[Payload],
) -> Payload:
    """Build a ``GUILD_CREATE`` guild object with roles, channels and members."""
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role_payload(role) for role in roles],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "unavailable": False,
        "large": False,
        "member_count": len(members),
        "channels": [channel_payload(channel) for channel in channels],
        "members": members,
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "joined_at": iso_timestamp(),
    }


def message_payload(
    *,
    message_id: int,
    channel_id: int,
    author: OfflineUser,
    body: Payload,
    message_type: int = 0,
    application_id: int | None = None,
    interaction: Payload | None = None,
    attachments: list[Payload] | None = None,
) -> Payload:
    """Build a message object from a create-message request ``body``."""
    data: Payload = {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "type": message_type,
        "author": user_payload(author),
        "content": body.get("content") or "",
        "timestamp": iso_timestamp(),
        "edited_timestamp": None,
        "tts": bool(body.get("tts", False)),
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": list(body.get("embeds") or []),
        "components": list(body.get("components") or []),
        "pinned": False,
        "flags": int(body.get("flags") or 0),
        "reactions": [],
    }
    if application_id is not None:
        data["application_id"] = str(application_id)
        data["webhook_id"] = str(application_id)
    if interaction is not None:
        data["interaction_metadata"] = interaction
    if "poll" in body and body["poll"] is not None:
        data["poll"] = body["poll"]
    return data


def resolved_payload(
    *,
    users: Sequence[OfflineUser] = (),
    members: Mapping[int, Payload] | None = None,
    roles: Sequence[OfflineRole] = (),
    channels: Sequence[Payload] = (),
) -> Payload:
    """Build the ``resolved`` data of a command option or an auto-populated select.

    ``members`` maps user ids to member objects without ``user``, as Discord sends them.
    """
    resolved: Payload = {}
    if users:
        resolved["users"] = {str(user.id): user_payload(user) for user in users}
    if members:
        resolved["members"] = {str(user_id): member for user_id, member in members.items()}
    if roles:
        resolved["roles"] = {str(role.id): role_payload(role) for role in roles}
    if channels:
        resolved["channels"] = {channel["id"]: channel for channel in channels}
    return resolved


def interaction_payload(
    *,
    interaction_id: int,
    application_id: int,
    interaction_type: int,
    token: str,
    data: Payload | None,
    channel: Payload,
    guild_id: int | None,
    member: Payload | None,
    user: OfflineUser,
    app_permissions: int,
    message: Payload | None = None,
    locale: str = "en-US",
) -> Payload:
    """Build a gateway ``INTERACTION_CREATE`` payload."""
    payload: Payload = {
        "id": str(interaction_id),
        "application_id": str(application_id),
        "type": interaction_type,
        "token": token,
        "version": 1,
        "channel": channel,
        "channel_id": channel["id"],
        "app_permissions": str(app_permissions),
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if data is not None:
        payload["data"] = data
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
        payload["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
        payload["guild_locale"] = "en-US"
        payload["member"] = member
        payload["context"] = _CONTEXT_GUILD
        payload["authorizing_integration_owners"] = {"0": str(guild_id)}
    else:
        payload["user"] = user_payload(user)
        payload["context"] = _CONTEXT_BOT_DM
        payload["authorizing_integration_owners"] = {"0": "0"}
    if message is not None:
        payload["message"] = message
    return payload


def app_info_payload(*, application_id: int, bot: OfflineUser, owner: OfflineUser) -> Payload:
    """Build the ``GET /oauth2/applications/@me`` answer that :meth:`Client.login` reads."""
    return {
        "id": str(application_id),
        "name": bot.name,
        "icon": None,
        "description": "",
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": user_payload(owner),
        "flags": 0,
        "bot": user_payload(bot),
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "approximate_guild_count": 1,
    }
