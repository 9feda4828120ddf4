"""The Redis store's frequent requests, packed in the Redis protocol by hand.

An update is a lease taken and a record saved: two requests, four commands, and packing
them command by command (a tuple of arguments each, every argument converted and
measured) cost about as much as everything else the store does for an update. Here the
parts that never change (command names, script SHAs, key prefixes, fixed arguments) are
encoded once, and a request is one ``bytes % (...)`` with the few parts that vary.

The bytes are exactly what ``hiredis.pack_command`` (and redis-py) would send for the
same command: the tests compare them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RequestPacker", "bulk_format", "float_text"]


def bulk_format(head: list[bytes], variable: int) -> bytes:
    """Return a ``%`` format for a command: ``head`` as given, then ``variable`` arguments.

    Each variable argument takes two values, its length and its bytes.
    """
    size = len(head) + variable
    out = [b"*%d\r\n" % size]
    out += [b"$%d\r\n%s\r\n" % (len(part), part.replace(b"%", b"%%")) for part in head]
    out += [b"$%d\r\n%b\r\n"] * variable
    return b"".join(out)


def float_text(value: float | None) -> bytes:
    """Encode a number as the store's scripts and indexes read it (``repr``; none: empty)."""
    return b"" if value is None else repr(float(value)).encode()


class RequestPacker:
    """Packs the requests of an update (acquire, commit) and of a lease release.

    Parameters
    ----------
    prefix:
        The store's key prefix.
    shas:
        The SHA1 of each of the store's scripts, by name.
    """

    __slots__ = (
        "_acquire",
        "_commit",
        "_deadline_add",
        "_deadline_drop",
        "_prefix",
        "_release",
        "_type_refresh",
    )

    def __init__(self, prefix: str, shas: Mapping[str, str]) -> None:
        self._prefix = prefix.encode()
        evalsha = b"EVALSHA"
        # KEYS rec, lease; ARGV owner, lease_ms
        self._acquire = bulk_format([evalsha, shas["ACQUIRE"].encode(), b"2"], 4)
        # KEYS rec, lease; ARGV owner, expected_rev, body, deadline, ttl_ms, release, token
        self._commit = bulk_format([evalsha, shas["COMMIT"].encode(), b"2"], 9)
        # KEYS lease; ARGV owner
        self._release = bulk_format([evalsha, shas["RELEASE"].encode(), b"1"], 2)
        deadlines = self._prefix + b":deadlines"
        self._deadline_add = bulk_format([b"ZADD", deadlines], 2)
        self._deadline_drop = bulk_format([b"ZREM", deadlines], 1)
        # KEY type index (variable), XX, expiry, id: XX, so that a refused commit of a
        # removed session does not bring its entry back.
        self._type_refresh = (
            b"*5\r\n$4\r\nZADD\r\n$%d\r\n%b\r\n$2\r\nXX\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
        )

    def keys(self, session_id: str) -> tuple[bytes, bytes]:
        """Return the record and lease keys of ``session_id``."""
        base = b"%b:{%b}" % (self._prefix, session_id.encode())
        return base + b":rec", base + b":lease"

    def acquire(self, session_id: str, owner: str, lease_ms: int) -> bytes:
        """Pack ``ACQUIRE``: take the lease, return the record (one command)."""
        rec, lease = self.keys(session_id)
        owner_b, ms = owner.encode(), b"%d" % lease_ms
        return self._acquire % (
            len(rec),
            rec,
            len(lease),
            lease,
            len(owner_b),
            owner_b,
            len(ms),
            ms,
        )

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
        token: str,
        index_expiry: float,
    ) -> bytes:
        """Pack ``COMMIT`` and the updates of the deadline and type indexes (3 commands)."""
        rec, lease = self.keys(session_id)
        owner_b, rev, ttl, tok = owner.encode(), b"%d" % expected, b"%d" % ttl_ms, token.encode()
        when = float_text(deadline)
        flag = b"1" if release else b"0"
        script = self._commit % (
            len(rec), rec, len(lease), lease, len(owner_b), owner_b, len(rev), rev,
            len(body), body, len(when), when, len(ttl), ttl, 1, flag, len(tok), tok,
        )  # fmt: skip
        sid = session_id.encode()
        if deadline is None:
            index = self._deadline_drop % (len(sid), sid)
        else:
            index = self._deadline_add % (len(when), when, len(sid), sid)
        key = b"%b:type:%b" % (self._prefix, session_type.encode())
        expiry = repr(float(index_expiry)).encode()
        by_type = self._type_refresh % (len(key), key, len(expiry), expiry, len(sid), sid)
        return b"".join((script, index, by_type))

    def release(self, session_id: str, owner: str) -> bytes:
        """Pack ``RELEASE``: give the lease back if ``owner`` holds it (one command)."""
        lease = self.keys(session_id)[1]
        owner_b = owner.encode()
        return self._release % (len(lease), lease, len(owner_b), owner_b)

    def __repr__(self) -> str:
        return f"<RequestPacker prefix={self._prefix!r}>"
