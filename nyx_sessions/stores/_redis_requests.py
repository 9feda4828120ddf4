"""The Redis store's frequent requests, packed in the Redis protocol by hand.

An update is a lease taken and a record saved: two requests, four commands, and packing
them command by command (a tuple of arguments each, every argument converted and
measured) cost about as much as everything else the store does for an update. Here the
parts that never change (command names, script SHAs, key prefixes, fixed arguments) are
encoded once, a session's keys once for the :data:`KEYS_KEPT` sessions packed last, and
a request is one ``bytes % (...)`` with the few parts that vary.

The bytes are exactly what ``hiredis.pack_command`` (and redis-py) would send for the
same command: the tests compare them.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BACKSTOP",
    "INDEX_STEP",
    "KEYS_KEPT",
    "Packed",
    "RequestPacker",
    "backstop",
    "bulk_format",
    "expiry_text",
]

BACKSTOP = 3600.0
"""Seconds a record outlives its deadline in Redis (its TTL is only a backstop)."""

INDEX_STEP = 600
"""Type index expiries are multiples of this many seconds (see :func:`expiry_text`)."""

KEYS_KEPT = 4096
"""Sessions whose packed keys a :class:`RequestPacker` keeps (about 280 bytes each)."""


class Packed(enum.Enum):
    """An argument of :func:`bulk_format` that comes as one value, already packed."""

    BULK = enum.auto()


def bulk_format(*args: bytes | tuple[bytes, bytes] | Packed | None) -> bytes:
    """Return a ``%`` format that packs one command of ``len(args)`` arguments.

    An argument is constant bytes; ``None`` for a variable one, which takes two values
    (its length and its bytes); ``(before, after)`` for one that is ``before + x +
    after`` with a variable ``x``, which takes two values (the whole length and ``x``);
    or :attr:`Packed.BULK` for one that takes one value, already packed.
    """
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if arg is Packed.BULK:
            out.append(b"%b")
        elif arg is None:
            out.append(b"$%d\r\n%b\r\n")
        elif isinstance(arg, tuple):
            before, after = (part.replace(b"%", b"%%") for part in arg)
            out.append(b"$%d\r\n" + before + b"%b" + after + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg.replace(b"%", b"%%")))
    return b"".join(out)


def backstop(deadline: float | None, now: float) -> tuple[int, float]:
    """Return a record's Redis TTL in ms (0: none) and when its type-index entry expires.

    The TTL lasts until the deadline plus :data:`BACKSTOP`, for records that no process
    ever expired; without a deadline there is none, and the entry never expires.
    """
    if deadline is None:
        return 0, math.inf
    left = max(deadline - now, 0.0) + BACKSTOP
    return max(1, round(left * 1000)), now + left


def expiry_text(value: float) -> bytes:
    """Encode a type index expiry, rounded up to the next :data:`INDEX_STEP` seconds.

    It only needs to be late enough (no earlier than the record's own expiry), and a
    coarse value rarely changes from one commit to the next, so the commit that finds
    it unchanged leaves the index alone.
    """
    if value < math.inf:
        return b"%d" % ((int(value) // INDEX_STEP + 1) * INDEX_STEP)
    return b"inf"


class RequestPacker:
    """Packs the requests of an update (acquire, commit) and of a lease release.

    Parameters
    ----------
    prefix:
        The store's key prefix.
    shas:
        The SHA1 of each of the store's scripts, by name.
    instance:
        The store's instance id, the first part of its write tokens.
    """

    __slots__ = (
        "_acquire",
        "_acquire_known",
        "_by_type",
        "_commit_drop",
        "_commit_move",
        "_key_sizes",
        "_keys",
        "_keys_format",
        "_owner",
        "_owner_bulk",
        "_prefix",
        "_release",
        "_token_size",
    )

    def __init__(self, prefix: str, shas: Mapping[str, str], instance: str) -> None:
        self._prefix = pfx = prefix.encode()
        self._key_sizes = (len(pfx) + 7, len(pfx) + 9)  # rec and lease, without the id
        # A session's keys and id come packed (see _keys_of): BULK, one value each.
        key = b"$%d\r\n" + pfx.replace(b"%", b"%%") + b":{%b}:"
        self._keys_format = key + b"rec\r\n", key + b"lease\r\n", b"$%d\r\n%b\r\n"
        self._keys: dict[str, tuple[bytes, bytes, bytes]] = {}
        rec = lease = sid = owner = Packed.BULK  # owner: see _owner_of
        token = (instance.encode() + b".", b"")
        self._token_size = len(instance) + 1
        # KEYS rec, lease; ARGV owner, lease_ms, known token (empty, or instance.N)
        acquire = (b"EVALSHA", shas["ACQUIRE"].encode(), b"2", rec, lease, owner, None)
        self._acquire = bulk_format(*acquire, b"")
        self._acquire_known = bulk_format(*acquire, token)
        # KEYS lease; ARGV owner
        self._release = bulk_format(b"EVALSHA", shas["RELEASE"].encode(), b"1", lease, owner)
        # KEYS rec, lease; ARGV owner, expected_rev, body, deadline, ttl_ms, release, token;
        # then the deadline index, then the type index (XX: a refused commit of a
        # removed session does not bring its entry back).
        commit = bulk_format(
            b"EVALSHA", shas["COMMIT"].encode(), b"2", rec, lease, owner,
            None, None, None, None, None, token,
        )  # fmt: skip
        by_type = bulk_format(b"ZADD", (pfx + b":type:", b""), b"XX", None, sid)
        deadlines = pfx + b":deadlines"
        self._commit_move = commit + bulk_format(b"ZADD", deadlines, None, sid)
        self._commit_drop = commit + bulk_format(b"ZREM", deadlines, sid)
        self._by_type = by_type
        self._owner, self._owner_bulk = "", b"$0\r\n\r\n"

    def acquire(self, session_id: str, owner: str, lease_ms: int, known: int | None) -> bytes:
        """Pack ``ACQUIRE``: take the lease, return the record (one command).

        ``known`` numbers this store's write whose record the caller still has: the
        record's body is left out of the reply when Redis still holds that write.
        """
        rec, lease, _ = self._keys_of(session_id)
        ms = b"%d" % lease_ms
        owner_b = self._owner_bulk if owner is self._owner else self._owner_of(owner)
        if known is None:
            return self._acquire % (rec, lease, owner_b, len(ms), ms)
        write = b"%d" % known
        return self._acquire_known % (
            rec, lease, owner_b, len(ms), ms, self._token_size + len(write), write
        )  # fmt: skip

    def commit(
        self,
        session_id: str,
        session_type: str,
        owner: str,
        expected: int,
        body: bytes,
        deadline: float | None,
        ttl_ms: int,
        release: bool,
        write: int,
        index_expiry: bytes | None,
    ) -> bytes:
        """Pack ``COMMIT``, the deadline index's update and the type index's (2 or 3).

        ``write`` numbers the write among the store's writes (its token's second part).
        ``index_expiry`` is the type index entry's new expiry (see :func:`expiry_text`),
        or None to leave the entry as it is.
        """
        rec, lease, sid = self._keys_of(session_id)
        rev, ttl, tok = b"%d" % expected, b"%d" % ttl_ms, b"%d" % write
        owner_b = self._owner_bulk if owner is self._owner else self._owner_of(owner)
        flag = b"1" if release else b"0"
        # One tuple per shape, built at once: this runs on every update.
        if deadline is None:
            request = self._commit_drop % (
                rec, lease, owner_b, len(rev), rev, len(body), body,
                0, b"", len(ttl), ttl, 1, flag, self._token_size + len(tok), tok, sid,
            )  # fmt: skip
        else:
            when = repr(deadline).encode()  # what the scripts and Python read back exactly
            request = self._commit_move % (
                rec, lease, owner_b, len(rev), rev, len(body), body,
                len(when), when, len(ttl), ttl, 1, flag, self._token_size + len(tok), tok,
                len(when), when, sid,
            )  # fmt: skip
        if index_expiry is None:
            return request
        kind = session_type.encode()
        return request + self._by_type % (
            len(self._prefix) + 6 + len(kind), kind, len(index_expiry), index_expiry, sid
        )  # fmt: skip

    def release(self, session_id: str, owner: str) -> bytes:
        """Pack ``RELEASE``: give the lease back if ``owner`` holds it (one command)."""
        return self._release % (self._keys_of(session_id)[1], self._owner_of(owner))

    def _keys_of(self, session_id: str) -> tuple[bytes, bytes, bytes]:
        """Return the session's record key, lease key and id, each packed as a bulk string.

        Kept for the last :data:`KEYS_KEPT` sessions packed: an update packs them twice,
        and a session is usually updated again.
        """
        packed = self._keys.get(session_id)
        if packed is None:
            sid = session_id.encode()
            size = len(sid)
            rec, lease = self._key_sizes
            rec_format, lease_format, bulk = self._keys_format
            packed = (
                rec_format % (rec + size, sid),
                lease_format % (lease + size, sid),
                bulk % (size, sid),
            )
            kept = self._keys
            if len(kept) >= KEYS_KEPT:
                del kept[next(iter(kept))]  # the oldest
            kept[session_id] = packed
        return packed

    def _owner_of(self, owner: str) -> bytes:
        """Return the lease owner packed; the last one is kept (a manager has one)."""
        if owner is not self._owner:
            data = owner.encode()
            self._owner, self._owner_bulk = owner, b"$%d\r\n%b\r\n" % (len(data), data)
        return self._owner_bulk

    def __repr__(self) -> str:
        return f"<RequestPacker prefix={self._prefix!r}>"
