"""Filters: who may start a session, and whose interactions reach it."""

from __future__ import annotations

from .base import (
    AbstractSessionFilter,
    AbstractSessionStartFilter,
    AbstractSessionUpdateFilter,
    AllOf,
    AnyOf,
    Not,
    SessionStartFilter,
    SessionUpdateFilter,
)
from .builtin import Cooldown, GuildOnly, HasPermissions, HasRole, OwnerOnly, UserIn

__all__ = [
    "AbstractSessionFilter",
    "AbstractSessionStartFilter",
    "AbstractSessionUpdateFilter",
    "AllOf",
    "AnyOf",
    "Cooldown",
    "GuildOnly",
    "HasPermissions",
    "HasRole",
    "Not",
    "OwnerOnly",
    "SessionStartFilter",
    "SessionUpdateFilter",
    "UserIn",
]
