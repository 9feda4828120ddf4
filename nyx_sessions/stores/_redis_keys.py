"""Where :class:`~nyx_sessions.stores.redis.RedisStore` keeps what: the key layout.

Sessions are spread over a fixed number of shards (``shards``, 16 by default) by a
stable hash of the session id (CRC-32). Every key of a shard carries the hash tag
``{<shard>}``, so the whole shard lives in ONE Redis Cluster slot: a session's record,
lease, end marker and aside key, and the shard's own deadline index and counts by type.
Each operation is then one Lua script on one slot, which updates the record and the
indexes together, atomically. With ``nyx`` as the prefix and shard 3::

    nyx:{3}:rec:<sid>      hash: rev, type, deadline ('' for none), body (msgpack), tok
    nyx:{3}:lease:<sid>    string: the lease owner, with PX = the lease
    nyx:{3}:corrupt:<sid>  a record that could not be used, set aside (kept, no TTL)
    nyx:{3}:end:<sid>      how a removed session ended (msgpack), for an hour
    nyx:{3}:deadlines      sorted set: every session id of the shard -> its deadline
                           (+inf for none), written with the record; a claim moves a
                           due entry to ``now + hold``; scans walk it too
    nyx:{3}:types          hash: session type -> number of records of the shard
    nyx:ends               pub/sub channel of end notices (not a key)

The shard count is part of the layout: every process sharing a prefix must use the
same one, and changing it strands the records of the old layout.
"""

from __future__ import annotations

import zlib

__all__ = ["KeyLayout", "SessionKeys"]


class SessionKeys:
    """The keys of one session, and of the shard it belongs to."""

    __slots__ = ("aside", "deadlines", "end", "lease", "rec", "types")

    def __init__(self, base: str, session_id: str) -> None:
        self.rec = f"{base}:rec:{session_id}"
        self.lease = f"{base}:lease:{session_id}"
        self.aside = f"{base}:corrupt:{session_id}"
        self.end = f"{base}:end:{session_id}"
        self.deadlines = f"{base}:deadlines"
        self.types = f"{base}:types"


class KeyLayout:
    """The key names of a store: see the module docstring.

    Parameters
    ----------
    prefix:
        The first part of every key and of the channel; without braces.
    shards:
        How many shards the sessions are spread over (1 to 16384).
    """

    __slots__ = ("channel", "prefix", "shards")

    def __init__(self, prefix: str, shards: int) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"invalid key prefix {prefix!r}: non-empty, without braces")
        if not 1 <= shards <= 16384:
            raise ValueError(f"shards must be between 1 and 16384, not {shards}")
        self.prefix = prefix
        self.shards = shards
        self.channel = f"{prefix}:ends"

    def shard_of(self, session_id: str) -> int:
        """Return the shard of ``session_id``: a hash that every process computes alike."""
        return zlib.crc32(session_id.encode()) % self.shards

    def base(self, shard: int) -> str:
        """Return the common start of a shard's keys, hash tag included."""
        return f"{self.prefix}:{{{shard}}}"

    def session(self, session_id: str) -> SessionKeys:
        """Return the keys of one session."""
        return SessionKeys(self.base(self.shard_of(session_id)), session_id)

    def deadlines(self, shard: int) -> str:
        """Return the deadline index of ``shard``."""
        return f"{self.base(shard)}:deadlines"

    def types(self, shard: int) -> str:
        """Return the counts by type of ``shard``."""
        return f"{self.base(shard)}:types"

    def record(self, shard: int, session_id: str) -> str:
        """Return the record key of ``session_id``, which lives in ``shard``."""
        return f"{self.base(shard)}:rec:{session_id}"
