"""Ready-made filters: who may start or use a session."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

import discord
from cachetools import LRUCache

from .base import AbstractSessionUpdateFilter, _BothFilter

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["Cooldown", "GuildOnly", "HasPermissions", "HasRole", "OwnerOnly", "UserIn"]


class OwnerOnly(AbstractSessionUpdateFilter):
    """Only the user who started the session may use it.

    Parameters
    ----------
    message:
        What other users see when they try.
    """

    __slots__ = ("message",)

    def __init__(self, message: str = "Only the person who started this can use it.") -> None:
        self.message = message

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when the interaction's user owns the session."""
        return interaction.user.id == session.owner_id

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return :attr:`message`."""
        return self.message

    def __repr__(self) -> str:
        return "OwnerOnly()"


class UserIn(_BothFilter):
    """Only the listed users may start or use the session."""

    __slots__ = ("message", "user_ids")

    def __init__(
        self, *users: int | discord.abc.Snowflake, message: str = "You can't use this."
    ) -> None:
        if not users:
            raise ValueError("UserIn needs at least one user")
        self.user_ids = frozenset(user if isinstance(user, int) else user.id for user in users)
        self.message = message

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when the interaction's user is listed."""
        return interaction.user.id in self.user_ids

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return :attr:`message`."""
        return self.message

    def __repr__(self) -> str:
        return f"UserIn({', '.join(map(str, sorted(self.user_ids)))})"


class HasRole(_BothFilter):
    """The user must have one of the roles (or all of them, with ``require_all``).

    Roles are given by id, by name, or as role objects. Outside a guild nobody has a role.
    """

    __slots__ = ("message", "require_all", "role_ids", "role_names")

    def __init__(
        self,
        *roles: int | str | discord.abc.Snowflake,
        require_all: bool = False,
        message: str | None = None,
    ) -> None:
        if not roles:
            raise ValueError("HasRole needs at least one role")
        self.role_ids = frozenset(
            role if isinstance(role, int) else role.id
            for role in roles
            if not isinstance(role, str)
        )
        self.role_names = frozenset(role for role in roles if isinstance(role, str))
        self.require_all = require_all
        self.message = message

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when the user has the roles."""
        member = interaction.user
        if not isinstance(member, discord.Member):
            return False
        ids = {role.id for role in member.roles}
        names = {role.name for role in member.roles}
        wanted = [role_id in ids for role_id in self.role_ids]
        wanted += [name in names for name in self.role_names]
        return all(wanted) if self.require_all else any(wanted)

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return the configured text, or one that names the roles by name."""
        if self.message is not None:
            return self.message
        names = sorted(self.role_names) + [f"<@&{role_id}>" for role_id in sorted(self.role_ids)]
        joiner = " and " if self.require_all else " or "
        return f"You need the {joiner.join(names)} role to use this."

    def __repr__(self) -> str:
        roles = [*map(str, sorted(self.role_ids)), *map(repr, sorted(self.role_names))]
        return f"HasRole({', '.join(roles)}, require_all={self.require_all})"


class HasPermissions(_BothFilter):
    """The user must have these channel permissions: ``HasPermissions(manage_messages=True)``."""

    __slots__ = ("message", "required")

    def __init__(self, *, message: str | None = None, **permissions: bool) -> None:
        if not permissions:
            raise ValueError("HasPermissions needs at least one permission")
        unknown = set(permissions) - set(discord.Permissions.VALID_FLAGS)
        if unknown:
            raise TypeError(f"unknown permissions: {', '.join(sorted(unknown))}")
        self.required = discord.Permissions(**permissions)
        self.message = message

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when the user's channel permissions include the required ones."""
        return self.required.is_subset(interaction.permissions)

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return the configured text, or one that names the missing permissions."""
        if self.message is not None:
            return self.message
        missing = [
            name
            for name, value in self.required
            if value and not getattr(interaction.permissions, name)
        ]
        pretty = ", ".join(name.replace("_", " ") for name in missing) or "the required permissions"
        return f"You need {pretty} to use this."

    def __repr__(self) -> str:
        return f"HasPermissions({', '.join(name for name, value in self.required if value)})"


class GuildOnly(_BothFilter):
    """Only in a server, not in direct messages."""

    __slots__ = ("message",)

    def __init__(self, message: str = "This can only be used in a server.") -> None:
        self.message = message

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when the interaction comes from a guild."""
        return interaction.guild_id is not None

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return :attr:`message`."""
        return self.message

    def __repr__(self) -> str:
        return "GuildOnly()"


class Cooldown(_BothFilter):
    """At most ``rate`` uses per ``per`` seconds for each user (a sliding window).

    Parameters
    ----------
    rate:
        Uses allowed within the window.
    per:
        The window, in seconds.
    per_session:
        Count each session separately (default: all sessions that share the filter,
        usually all sessions of one class).
    maxsize:
        The most users remembered at once; the least recently seen are forgotten first.
    """

    __slots__ = ("_uses", "per", "per_session", "rate")

    def __init__(
        self, rate: int = 1, per: float = 3.0, *, per_session: bool = False, maxsize: int = 100_000
    ) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("Cooldown needs rate >= 1 and per > 0")
        self.rate = rate
        self.per = per
        self.per_session = per_session
        self._uses: LRUCache[tuple[str, int] | int, deque[float]] = LRUCache(maxsize=maxsize)

    def _key(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> tuple[str, int] | int:
        user_id = interaction.user.id
        return (session.id, user_id) if self.per_session else user_id

    @staticmethod
    def _now(session: Session[Any]) -> float:
        manager = session.manager
        return manager.clock.now() if manager is not None else time.time()

    def retry_after(self, session: Session[Any], interaction: discord.Interaction[Any]) -> float:
        """Return the seconds until the user may act again (0 when they may now)."""
        uses = self._uses.get(self._key(session, interaction))
        if uses is None or len(uses) < self.rate:
            return 0.0
        return max(0.0, uses[0] + self.per - self._now(session))

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True, and count the use, when the user is within the rate."""
        key = self._key(session, interaction)
        now = self._now(session)
        uses = self._uses.get(key)
        if uses is None:
            uses = self._uses[key] = deque(maxlen=self.rate)
        if len(uses) == self.rate and now - uses[0] < self.per:
            return False
        uses.append(now)
        return True

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Say when the user may try again."""
        wait = self.retry_after(session, interaction)
        return f"You're doing that too often. Try again in {wait:.1f} seconds."

    def __repr__(self) -> str:
        return f"Cooldown(rate={self.rate}, per={self.per}, per_session={self.per_session})"
