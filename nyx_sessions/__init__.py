"""nyx-sessions: sessions for discord.py bots.

Buttons, select menus and modals routed to stateful sessions with TTLs, filters and
results; in memory, or in Redis to survive restarts and serve many processes.
"""

from __future__ import annotations

from .actions import action
from .clock import Clock, LoopClock
from .codecs import CustomIdBuilder, SessionCustomIdCodec, StringIterator
from .conversation import ConversationSession
from .end import EndCode, SessionEndData
from .errors import (
    ConversationTimeout,
    CorruptRecordError,
    CustomIdError,
    CustomIdTooLongError,
    LeaseTimeoutError,
    MalformedCustomIdError,
    ManagerClosedError,
    NyxSessionError,
    RecordError,
    RecordTooLargeError,
    RecordVersionError,
    RevisionConflictError,
    SessionLimitError,
    SessionNotFoundError,
    SessionStateError,
    SessionTypeNotRegisteredError,
    StateEncodeError,
    StoreError,
    StoreUnavailableError,
    UnknownSessionTypeError,
)
from .events import SessionEvent
from .filters import (
    AbstractSessionStartFilter,
    AbstractSessionUpdateFilter,
    Cooldown,
    GuildOnly,
    HasPermissions,
    HasRole,
    OwnerOnly,
    SessionStartFilter,
    SessionUpdateFilter,
    UserIn,
)
from .inputs import ModalValue, ModalValues, SelectValue, modal_values, select_values
from .manager import SessionManager
from .responders import Responder
from .session import AbstractSession, Session
from .stores.base import SessionRecord, SessionStore
from .stores.memory import MemoryStore

__version__ = "0.1.0"

__all__ = [
    "AbstractSession",
    "AbstractSessionStartFilter",
    "AbstractSessionUpdateFilter",
    "Clock",
    "ConversationSession",
    "ConversationTimeout",
    "Cooldown",
    "CorruptRecordError",
    "CustomIdBuilder",
    "CustomIdError",
    "CustomIdTooLongError",
    "EndCode",
    "GuildOnly",
    "HasPermissions",
    "HasRole",
    "LeaseTimeoutError",
    "LoopClock",
    "MalformedCustomIdError",
    "ManagerClosedError",
    "MemoryStore",
    "ModalValue",
    "ModalValues",
    "NyxSessionError",
    "OwnerOnly",
    "RecordError",
    "RecordTooLargeError",
    "RecordVersionError",
    "Responder",
    "RevisionConflictError",
    "SelectValue",
    "Session",
    "SessionCustomIdCodec",
    "SessionEndData",
    "SessionEvent",
    "SessionLimitError",
    "SessionManager",
    "SessionNotFoundError",
    "SessionRecord",
    "SessionStartFilter",
    "SessionStateError",
    "SessionStore",
    "SessionTypeNotRegisteredError",
    "SessionUpdateFilter",
    "StateEncodeError",
    "StoreError",
    "StoreUnavailableError",
    "StringIterator",
    "UnknownSessionTypeError",
    "UserIn",
    "__version__",
    "action",
    "modal_values",
    "select_values",
]
