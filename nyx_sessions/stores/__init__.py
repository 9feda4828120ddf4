"""Session stores: the :class:`SessionStore` protocol and the built-in backends.

:class:`MemoryStore` is the default. The Redis store needs the ``redis`` extra and is
imported from its own module: ``from nyx_sessions.stores.redis import RedisStore``.
"""

from __future__ import annotations

from .base import SessionRecord, SessionStore
from .memory import MemoryStore

__all__ = ["MemoryStore", "SessionRecord", "SessionStore"]
