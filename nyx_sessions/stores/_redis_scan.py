"""Reading every record of a :class:`~nyx_sessions.stores.redis.RedisStore`, read-only.

For inspection tools (``python -m nyx_sessions inspect``): no lease is taken, nothing is
moved or cleaned. The per-type indexes are walked with ZSCAN (never KEYS), in steps that
do not block Redis, so the records seen are those that ``count_by_type`` counts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import RecordError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractContextManager

    import redis.asyncio

    from ..codecs.state import StateCodec
    from .base import SessionRecord

__all__ = ["scan_records"]

_log = logging.getLogger("nyx_sessions.stores.redis")

SCAN_BATCH = 200
"""Ids per ZSCAN step, and per pipelined read of their records."""


async def scan_records(
    client: redis.asyncio.Redis,
    codec: StateCodec,
    prefix: str,
    translate: Callable[[str], AbstractContextManager[None]],
    *,
    session_type: str | None,
    limit: int | None,
) -> AsyncIterator[SessionRecord]:
    """Yield the records under ``prefix``; see ``RedisStore.scan``.

    ``translate(action)`` turns Redis errors into store errors. A record that cannot be
    decoded is logged and skipped (and left where it is).
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be None or at least 0")
    if session_type is None:
        with translate("scan"):
            members: set[bytes] = await client.smembers(f"{prefix}:types")  # type: ignore[assignment]
        types = sorted(raw.decode(errors="replace") for raw in members)
    else:
        types = [session_type]
    found = 0
    for name in types:
        cursor, seen = 0, set[str]()  # ZSCAN may return an id twice while Redis rehashes
        while limit is None or found < limit:
            with translate("scan"):
                cursor, entries = await client.zscan(
                    f"{prefix}:type:{name}", cursor, count=SCAN_BATCH
                )
                ids = [sid for raw, _ in entries if (sid := _str(raw)) not in seen]
                pipe = client.pipeline(transaction=False)
                for sid in ids:
                    pipe.hmget(f"{prefix}:{{{sid}}}:rec", ["rev", "body"])
                rows = await pipe.execute(raise_on_error=False) if ids else []
            seen.update(ids)
            for sid, row in zip(ids, rows, strict=True):
                record = _peek(codec, sid, row)
                if record is not None and (limit is None or found < limit):
                    found += 1
                    yield record
            if cursor == 0:
                break


def _peek(codec: StateCodec, sid: str, row: Any) -> SessionRecord | None:
    """Decode a record read by a scan; None when it is gone or unreadable."""
    if isinstance(row, Exception) or row[1] is None:
        return None  # gone since the index was read, or not a hash
    try:
        record = codec.decode_record(row[1])
    except RecordError as error:
        _log.warning("Session %s: record skipped by scan (%s)", sid, error)
        return None
    if record.session_id != sid or str(record.revision).encode() != row[0]:
        _log.warning("Session %s: record skipped by scan (inconsistent fields)", sid)
        return None
    return record


def _str(raw: bytes | str | float) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
