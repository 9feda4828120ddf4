"""Exceptions raised by nyx-sessions.

Every exception derives from :class:`NyxSessionError`; where the meaning matches a
builtin, the builtin is a second base so ``except KeyError`` and friends keep working::

    NyxSessionError
    ├── ConversationTimeout (TimeoutError)
    ├── CustomIdError (ValueError)
    │   ├── CustomIdTooLongError
    │   └── MalformedCustomIdError
    ├── SessionNotFoundError (KeyError)
    ├── SessionStateError (RuntimeError)
    ├── SessionTypeNotRegisteredError
    ├── SessionLimitError
    ├── ManagerClosedError (RuntimeError)
    ├── StateEncodeError (TypeError)
    └── StoreError
        ├── StoreUnavailableError (ConnectionError)
        ├── RevisionConflictError
        ├── LeaseTimeoutError (TimeoutError)
        └── RecordError
            ├── CorruptRecordError
            ├── UnknownSessionTypeError
            ├── RecordVersionError
            └── RecordTooLargeError
"""

from __future__ import annotations

__all__ = [
    "ConversationTimeout",
    "CorruptRecordError",
    "CustomIdError",
    "CustomIdTooLongError",
    "LeaseTimeoutError",
    "MalformedCustomIdError",
    "ManagerClosedError",
    "NyxSessionError",
    "RecordError",
    "RecordTooLargeError",
    "RecordVersionError",
    "RevisionConflictError",
    "SessionLimitError",
    "SessionNotFoundError",
    "SessionStateError",
    "SessionTypeNotRegisteredError",
    "StateEncodeError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownSessionTypeError",
]


class NyxSessionError(Exception):
    """Base class of every error raised by nyx-sessions."""


class ConversationTimeout(NyxSessionError, TimeoutError):
    """A conversation's wait ran out of time (raised inside ``converse()``)."""


class CustomIdError(NyxSessionError, ValueError):
    """A custom id could not be built or read."""


class CustomIdTooLongError(CustomIdError):
    """A built custom id is longer than Discord's 100-character limit."""


class MalformedCustomIdError(CustomIdError):
    """A custom id is not in the session codec's format."""


class SessionNotFoundError(NyxSessionError, KeyError):
    """No live session has the given id."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better in logs.
        return str(self.args[0]) if self.args else "session not found"


class SessionStateError(NyxSessionError, RuntimeError):
    """A session was used in a state that does not allow it (not started, ended)."""


class SessionTypeNotRegisteredError(NyxSessionError):
    """A session started with a persistent store belongs to a class the manager cannot restore."""


class SessionLimitError(NyxSessionError):
    """Starting the session would exceed a configured cap on live sessions."""


class ManagerClosedError(NyxSessionError, RuntimeError):
    """The session manager is closed and cannot be used again."""


class StateEncodeError(NyxSessionError, TypeError):
    """Session state holds a value that the state codec cannot encode."""


class StoreError(NyxSessionError):
    """A session store failed."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The session store cannot be reached."""


class RevisionConflictError(StoreError):
    """A save was refused because the record changed since it was read."""


class LeaseTimeoutError(StoreError, TimeoutError):
    """A session's lease could not be acquired in time."""


class RecordError(StoreError):
    """A stored session record cannot be turned back into a session."""


class CorruptRecordError(RecordError):
    """A stored record cannot be decoded."""


class UnknownSessionTypeError(RecordError):
    """A stored record names a session type that is not registered."""


class RecordVersionError(RecordError):
    """A stored record was written by a newer format version."""


class RecordTooLargeError(RecordError):
    """An encoded record is larger than the configured cap."""
