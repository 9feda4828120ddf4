"""Why and how a session ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

if TYPE_CHECKING:
    # A default makes a bare ``SessionEndData`` mean ``SessionEndData[Any]``, as before
    # it was generic; typing_extensions is only read by the type checker here.
    from typing_extensions import TypeVar

    EndResultT = TypeVar("EndResultT", default=Any)
else:
    from typing import TypeVar

    EndResultT = TypeVar("EndResultT")

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
class SessionEndData(Generic[EndResultT]):
    """What a session's :attr:`~AbstractSession.end_promise` resolves to.

    Generic in the session's result type: the end of an ``AbstractSession[int]`` is a
    ``SessionEndData[int]``, whose :attr:`result` is an ``int`` or None.

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
    result: EndResultT | None = None
