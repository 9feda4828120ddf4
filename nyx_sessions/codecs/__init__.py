"""Codecs: the custom ids of session components."""

from __future__ import annotations

from nyx_sessions.codecs.custom_id import (
    CustomIdBuilder,
    SessionCustomIdCodec,
    StringIterator,
    is_valid_session_id,
)
from nyx_sessions.codecs.state import StateCodec

__all__ = [
    "CustomIdBuilder",
    "SessionCustomIdCodec",
    "StateCodec",
    "StringIterator",
    "is_valid_session_id",
]
