"""A second bot process, reduced to what matters: it takes a session's lease mid-update.

Run by the fault tests as a real subprocess::

    python lease_holder.py REDIS_URL SESSION_ID LEASE_SECONDS OWNER MODE

It takes the lease through :meth:`RedisStore.acquire` and prints one line,
``holding <revision> <count>``. Then, by ``MODE``:

- ``hold``: it never commits; the test SIGKILLs it while it holds the lease.
- ``commit``: it waits for a line on stdin (the test SIGSTOPs and SIGCONTs it meanwhile,
  a pause longer than the lease), adds 100 to ``count``, commits, and prints
  ``committed <revision>`` or ``refused <error>``.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from nyx_sessions.errors import RevisionConflictError
from nyx_sessions.stores.redis import RedisStore


async def main(url: str, session_id: str, lease: float, owner: str, mode: str) -> int:
    client = Redis.from_url(url)
    store = RedisStore(client)
    try:
        record = await store.acquire(session_id, lease_owner=owner, lease=lease, wait=5.0)
        if record is None:
            print("missing", flush=True)
            return 1
        print(f"holding {record.revision} {record.data.get('count')}", flush=True)
        if mode == "hold":
            await asyncio.Event().wait()  # mid-update for ever: only SIGKILL ends this
        await asyncio.to_thread(sys.stdin.readline)
        record.data["count"] = int(record.data.get("count", 0)) + 100
        try:
            revision = await store.commit(record, lease_owner=owner, release=True)
        except RevisionConflictError as error:
            print(f"refused {type(error).__name__}: {error}", flush=True)
        else:
            print(f"committed {revision}", flush=True)
        return 0
    finally:
        await store.aclose()
        await client.aclose()


if __name__ == "__main__":
    url, session_id, lease, owner, mode = sys.argv[1:6]
    sys.exit(asyncio.run(main(url, session_id, float(lease), owner, mode)))
