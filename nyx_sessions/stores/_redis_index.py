"""Reading the shards' indexes of :class:`~nyx_sessions.stores.redis.RedisStore`.

Each shard keeps its own deadline index and counts by type (see ``_redis_keys``), so
what the manager asks of the whole store reads every shard: in one pipeline, which
redis-py's ``RedisCluster`` splits by node.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster
    from redis.commands.core import AsyncScript

    from ._redis_calls import ScriptCalls
    from ._redis_keys import KeyLayout

__all__ = ["claim_due", "count_types"]


async def claim_due(
    client: redis.asyncio.Redis | RedisCluster,
    keys: KeyLayout,
    calls: ScriptCalls,
    claim: AsyncScript,
    *,
    now: str,
    hold_until: str,
    limit: int,
) -> list[str]:
    """Claim the ``limit`` earliest due sessions; their ids, earliest deadline first.

    One pipelined read of every shard's earliest due ids; when some are due, one CLAIM
    script per shard that has any, all in one batch. The script claims an id only if it
    is still due, and moves it to ``hold_until``: of two claimers, one gets it.
    """
    shards = range(keys.shards)
    pipe = client.pipeline(transaction=False)
    for shard in shards:
        pipe.zrangebyscore(keys.deadlines(shard), "-inf", now, 0, limit, withscores=True)
    due = sorted(
        (score, raw.decode(), shard)
        for shard, rows in zip(shards, await pipe.execute(), strict=True)
        for raw, score in rows
    )[:limit]
    if not due:
        return []
    picked: dict[int, list[str]] = {}
    for _, session_id, shard in due:
        picked.setdefault(shard, []).append(session_id)
    replies = await asyncio.gather(
        *(
            calls.run(claim, [keys.deadlines(shard)], [now, hold_until, *ids], write=False)
            for shard, ids in picked.items()
        )
    )
    claimed = {raw.decode() for reply in replies for raw in reply}
    return [session_id for _, session_id, _ in due if session_id in claimed]


async def count_types(
    client: redis.asyncio.Redis | RedisCluster, keys: KeyLayout
) -> dict[str, int]:
    """Add up the shards' counts by type; types without records are left out."""
    counts: dict[str, int] = {}
    pipe = client.pipeline(transaction=False)
    for shard in range(keys.shards):
        pipe.hgetall(keys.types(shard))
    for shard_counts in await pipe.execute():
        for raw_type, raw_count in shard_counts.items():
            name = raw_type.decode(errors="replace")
            counts[name] = counts.get(name, 0) + int(raw_count)
    return {name: count for name, count in sorted(counts.items()) if count > 0}
