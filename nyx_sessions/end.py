"""Why and how a session ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["EndCode", "SessionEndData"]


class EndCode(enum.StrEnum):
    """Why a session ended."""

    ENDED = "ended"
    """The session stopped itself (:meth:`AbstractSession.stop`)."""
    EXPIRED = "expired"
    """Its TTL or its maximum lifetime ran out."""
    CANCELLED = "cancelled"
    """It was ended from outside (:meth:`SessionManager.end`)."""
    ERROR = "error"
    """A failure ended it (its ``start()`` raised, or its record could not be used)."""
    REJECTED = "rejected"
    """The start filter refused it; it never ran."""
    SHUTDOWN = "shutdown"
    """The manager closed while the session was live."""


@dataclass(frozen=True, slots=True)
class SessionEndData:
    """What a session's :attr:`~AbstractSession.end_promise` resolves to.

    Attributes
    ----------
    session_id:
        The id of the session that ended.
    code:
        Why it ended.
    reason:
        A free-form explanation, when one was given.
    result:
        The session's result (:meth:`AbstractSession.get_result`), or None.
    """

    session_id: str
    code: EndCode
    reason: str | None = None
    result: Any = None
