"""Reading every record of a :class:`~nyx_sessions.stores.redis.RedisStore`, read-only.

For inspection tools (``python -m nyx_sessions inspect``): no lease is taken, nothing is
moved or cleaned. Each shard's deadline index holds every session of the shard (see
``_redis_keys``); it is walked with ZSCAN (never KEYS), in steps that do not block
Redis, so the records seen are those that ``count_by_type`` counts. Each step is two
pipelined reads: the records' fields and body sizes, then the bodies within the cap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import RecordError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractContextManager

    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster

    from ..codecs.state import StateCodec
    from ._redis_keys import KeyLayout
    from .base import SessionRecord

__all__ = ["scan_records"]

_log = logging.getLogger("nyx_sessions.stores.redis")

SCAN_BATCH = 200
"""Ids per ZSCAN step, and per pipelined read of their records."""


async def scan_records(
    client: redis.asyncio.Redis | RedisCluster,
    codec: StateCodec,
    keys: KeyLayout,
    translate: Callable[[str], AbstractContextManager[None]],
    *,
    session_type: str | None,
    limit: int | None,
) -> AsyncIterator[SessionRecord]:
    """Yield the records of the store laid out by ``keys``; see ``RedisStore.scan``.

    ``translate(action)`` turns Redis errors into store errors. A record that cannot be
    decoded, or is over the codec's size cap, is logged and skipped (and left alone).
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be None or at least 0")
    cap = codec.max_record_size
    found = 0
    for shard in range(keys.shards):
        cursor, seen = 0, set[str]()  # ZSCAN may return an id twice while Redis rehashes
        while limit is None or found < limit:
            with translate("scan"):
                cursor, entries = await client.zscan(
                    keys.deadlines(shard), cursor, count=SCAN_BATCH
                )
                ids = [sid for raw, _ in entries if (sid := _str(raw)) not in seen]
                seen.update(ids)
                rows = await _read(client, [keys.record(shard, sid) for sid in ids], cap)
            for sid, row in zip(ids, rows, strict=True):
                record = _peek(codec, sid, row, session_type)
                if record is not None and (limit is None or found < limit):
                    found += 1
                    yield record
            if cursor == 0:
                break


async def _read(
    client: redis.asyncio.Redis | RedisCluster, names: list[str], cap: int | None
) -> list[Any]:
    """For each record key: ``[rev, type, body]``, None as body when over the cap."""
    if not names:
        return []
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(name, ["rev", "type"])
        pipe.hstrlen(name, "body")
    heads = await pipe.execute(raise_on_error=False)
    rows: list[Any] = []
    wanted: list[int] = []
    pipe = client.pipeline(transaction=False)
    for index, name in enumerate(names):
        head, size = heads[2 * index], heads[2 * index + 1]
        if isinstance(head, Exception) or head[0] is None:
            rows.append(None)  # gone since the index was read, or not a hash
            continue
        if cap is not None and isinstance(size, int) and size > cap:
            _log.warning("Record %s skipped by scan (%d bytes, over the cap)", name, size)
            rows.append(None)
            continue
        rows.append([head[0], head[1], None])
        wanted.append(index)
        pipe.hget(name, "body")
    bodies = await pipe.execute(raise_on_error=False) if wanted else []
    for index, body in zip(wanted, bodies, strict=True):
        rows[index][2] = None if isinstance(body, Exception) else body
    return rows


def _peek(codec: StateCodec, sid: str, row: Any, session_type: str | None) -> SessionRecord | None:
    """Decode a record read by a scan; None when gone, unreadable or of another type."""
    if row is None or row[2] is None:
        return None
    if session_type is not None and row[1] != session_type.encode():
        return None
    try:
        record = codec.decode_record(row[2])
    except RecordError as error:
        _log.warning("Session %s: record skipped by scan (%s)", sid, error)
        return None
    if record.session_id != sid or str(record.revision).encode() != row[0]:
        _log.warning("Session %s: record skipped by scan (inconsistent fields)", sid)
        return None
    return record


def _str(raw: bytes | str | float) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
