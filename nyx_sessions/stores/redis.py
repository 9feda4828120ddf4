"""A session store on Redis, shared by every process of a bot and surviving restarts.

It runs on a single Redis, a Sentinel-managed one, or a Redis Cluster, through
redis-py's public API: registered scripts, run with EVALSHA in pipelines without
transactions; the calls made at the same time share one pipeline (``_redis_calls``).

Sessions are spread over ``shards`` shards; every key of a shard, its deadline index
and its counts by type included, lives in one Cluster slot (the layout is in
``_redis_keys``). Each operation is ONE script on one slot, so it updates the record
and the indexes atomically, in one round trip (see ``_redis_scripts``):

- ``create`` inserts the record at revision 1, takes the lease (SET PX), indexes the
  deadline and counts the type.
- ``acquire`` takes the lease (free, expired, or already ours) and returns the record;
  a busy lease is polled with a short backoff, bounded by ``wait``.
- ``commit`` checks the lease owner and the revision (the fencing token), writes the
  record and its deadline, bumps the revision and optionally releases. A commit whose
  reply was lost and that is sent again is recognised by its write token.
- ``remove`` deletes the record and the lease, drops the index entries, and keeps the
  session's end (when given) for ``end_kept`` seconds, for :meth:`RedisStore.ended`.
- ``claim_expired`` reads the due ids of every shard (one pipelined round trip), picks
  the earliest ``limit``, and claims them with one script per shard that moves each
  still-due entry to ``now + hold``: of two processes, only one claims an id.

A record that cannot be used (undecodable, inconsistent, not a hash, or with a body
over the codec's ``max_record_size``, which is never read) is renamed to ``:corrupt``,
kept without a TTL and dropped from the indexes; one written by a newer format is left
where it is for the release that can read it.

With ``wait_replicas``, every write is followed by a WAIT in the same pipeline, so an
acknowledged write has reached that many replicas (see the persistence guide).

End notices travel over pub/sub (``_redis_notices``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from typing import TYPE_CHECKING, Any, NoReturn, Self

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    ClusterError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..clock import Clock, LoopClock
from ..codecs.state import StateCodec
from ..errors import (
    CorruptRecordError,
    LeaseTimeoutError,
    RecordError,
    RecordTooLargeError,
    RecordVersionError,
    RevisionConflictError,
    StoreError,
    StoreUnavailableError,
)
from . import _redis_scripts as lua
from ._redis_calls import ScriptCalls
from ._redis_index import claim_due, count_types
from ._redis_keys import KeyLayout, SessionKeys
from ._redis_notices import EndNotices, decode_end, encode_end
from ._redis_scan import scan_records

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from redis.commands.core import AsyncScript

    from ..end import SessionEndData
    from .base import SessionRecord

__all__ = ["RedisStore"]

_log = logging.getLogger("nyx_sessions.stores.redis")

_FIRST_PAUSE, _MAX_PAUSE = 0.002, 0.05  # lease polling
_DRAIN_WAIT = 1.0  # how long aclose() lets the calls in flight finish
_STORE_OPTIONS = {"prefix", "shards", "codec", "clock", "wait_replicas", "wait_timeout", "end_kept"}
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, ReadOnlyError, ClusterError)


class RedisStore:
    """Session records in Redis: persistent, shared by processes, Sentinel and Cluster.

    Parameters
    ----------
    client:
        A ``redis.asyncio.Redis`` (a Sentinel's ``master_for(...)`` too) or a
        ``redis.asyncio.RedisCluster``, with ``decode_responses=False``; the store
        borrows it and never closes it. Or a URL: the store then makes its own client
        and closes it in :meth:`aclose` (see also :meth:`from_url`).
    prefix:
        The prefix of every key and of the pub/sub channel.
    shards:
        How many shards (Cluster slots) the sessions are spread over. Every process
        sharing ``prefix`` must use the same number.
    codec:
        The state codec (register your enums there); ``StateCodec()`` by default. Its
        ``max_record_size`` caps what is written and what is read.
    clock:
        The time source, shared with the manager (the manager passes its own). Lease
        expiry is measured by the Redis server itself.
    wait_replicas:
        After each write (create, commit, remove), wait until that many replicas have
        it (WAIT, in the same round trip); a write that does not reach them in time
        raises :class:`~nyx_sessions.errors.StoreUnavailableError`. 0 (the default)
        does not wait. Not available on a Redis Cluster.
    wait_timeout:
        How long, in seconds, a write waits for its replicas.
    end_kept:
        How long, in seconds, :meth:`ended` still knows a removed session's end.
    """

    persistent = True
    shared = True

    __slots__ = (
        "_calls",
        "_client",
        "_clock",
        "_closed",
        "_codec",
        "_end_ms",
        "_instance",
        "_keys",
        "_notices",
        "_owns_client",
        "_scripts",
        "_writes",
    )

    def __init__(
        self,
        client: str | redis.asyncio.Redis | RedisCluster,
        *,
        prefix: str = "nyx",
        shards: int = 16,
        codec: StateCodec | None = None,
        clock: Clock | None = None,
        wait_replicas: int = 0,
        wait_timeout: float = 0.1,
        end_kept: float = 3600.0,
    ) -> None:
        self._keys = KeyLayout(prefix, shards)
        owns = isinstance(client, str)
        if isinstance(client, str):
            client = redis.asyncio.Redis.from_url(client)
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False")
        if wait_replicas < 0 or wait_timeout <= 0:
            raise ValueError("wait_replicas must be >= 0 and wait_timeout > 0")
        if wait_replicas and isinstance(client, RedisCluster):
            raise ValueError("wait_replicas is not available on a Redis Cluster")
        self._client = client
        self._owns_client = owns
        self._codec = codec or StateCodec()
        self._clock: Clock = clock or LoopClock()
        self._end_ms = max(1, round(end_kept * 1000))
        self._instance = uuid.uuid4().hex
        self._writes = itertools.count(1)
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(getattr(lua, name)) for name in lua.__all__
        }
        self._notices = EndNotices(client, self._keys.channel, self._codec, self._instance)
        self._calls = ScriptCalls(client, (wait_replicas, max(1, round(wait_timeout * 1000))))
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, **options: Any) -> Self:
        """Create a store with its own client, closed by :meth:`aclose`.

        Parameters
        ----------
        url:
            The Redis URL (``redis://``, ``rediss://``, ``unix://``).
        cluster:
            Connect to a Redis Cluster (``RedisCluster.from_url``).
        options:
            The store's keyword arguments (``prefix``, ``shards``, ``codec``, ...);
            the rest go to redis-py's ``from_url``.
        """
        mine = {name: options.pop(name) for name in _STORE_OPTIONS & options.keys()}
        client: redis.asyncio.Redis | RedisCluster = (
            RedisCluster.from_url(url, **options)
            if cluster
            else redis.asyncio.Redis.from_url(url, **options)
        )
        store = cls(client, **mine)
        store._owns_client = True
        return store

    def use_clock(self, clock: Clock) -> None:
        """Take the manager's clock."""
        self._clock = clock

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the scripts and start listening for end notices from other processes.

        A Redis that is down is not an error here: the listener keeps reconnecting, and
        the scripts are loaded by the first call that needs them.
        """
        self._ensure_open()
        if self._notices.started:
            return
        with contextlib.suppress(StoreError), self._translate("script load"):
            for script in self._scripts.values():
                await self._client.script_load(script.script)
        await self._notices.start()

    async def aclose(self) -> None:
        """Stop the listener and close the client if the store opened it; idempotent."""
        if self._closed:
            return
        self._closed = True
        if not await self._notices.stop():
            _log.warning("The Redis end listener of %r did not stop in time", self)
        await self._calls.drain(_DRAIN_WAIT)
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- records ---------------------------------------------------------------------------

    async def create(self, record: SessionRecord, *, lease_owner: str, lease: float) -> None:
        """Insert ``record`` at revision 1 and hold its lease, in one round trip."""
        sid = record.session_id
        keys = self._keys.session(sid)
        body = self._codec.encode_record(record, revision=1)
        args = [
            lease_owner, _ms(lease), record.session_type, body, _text(record.deadline),
            self._token(), sid,
        ]  # fmt: skip
        created = await self._run(
            "CREATE", [keys.rec, keys.lease, keys.deadlines, keys.types], args, "create", True
        )
        if not created:
            raise StoreError(f"session {sid} already exists")
        record.revision = 1

    async def get(self, session_id: str) -> SessionRecord | None:
        """Load a record without taking its lease, or None."""
        keys = self._keys.session(session_id)
        reply = await self._run("READ", [keys.rec], [self._cap()], "get")
        return await self._answer(session_id, keys, reply, None)

    async def acquire(
        self, session_id: str, *, lease_owner: str, lease: float, wait: float
    ) -> SessionRecord | None:
        """Take the lease of ``session_id`` and load its record.

        A lease held elsewhere is waited for up to ``wait`` s, counted from the first
        refusal, on both the loop's and the store's clock (either may be the one that
        moves: a manual clock in tests).
        """
        keys = self._keys.session(session_id)
        args = [self._cap(), lease_owner, _ms(lease)]
        loop: asyncio.AbstractEventLoop | None = None
        give_up = give_up_clock = 0.0
        pause = _FIRST_PAUSE
        while True:
            reply = await self._run("ACQUIRE", [keys.rec, keys.lease], args, "acquire")
            if reply[0] != 2:
                return await self._answer(session_id, keys, reply, lease_owner)
            if loop is None:
                loop = asyncio.get_running_loop()
                give_up, give_up_clock = loop.time() + wait, self._clock.now() + wait
            left = give_up - loop.time()
            if left <= 0 or self._clock.now() >= give_up_clock:
                raise LeaseTimeoutError(f"session {session_id} is busy (lease held elsewhere)")
            holder_left = reply[1] / 1000 if reply[1] > 0 else pause
            await asyncio.sleep(min(pause, holder_left, left))
            pause = min(pause * 2, _MAX_PAUSE)

    async def commit(self, record: SessionRecord, *, lease_owner: str, release: bool) -> int:
        """Save ``record`` if its revision is current and the lease is ours; one round trip."""
        sid = record.session_id
        keys = self._keys.session(sid)
        revision = record.revision + 1
        body = self._codec.encode_record(record, revision=revision)
        args = [
            lease_owner, record.revision, body, _text(record.deadline), "1" if release else "0",
            self._token(), sid,
        ]  # fmt: skip
        reply = await self._run(
            "COMMIT", [keys.rec, keys.lease, keys.deadlines], args, "commit", True
        )
        status = reply[0]
        if status == 1:
            record.revision = revision
            return revision
        if status == 0:
            raise RevisionConflictError(f"session {sid} no longer exists")
        if status == -1:
            raise RevisionConflictError(f"session {sid} is leased by another owner")
        raise RevisionConflictError(f"session {sid} is at revision {reply[1]}, not {revision - 1}")

    async def release(self, session_id: str, *, lease_owner: str) -> None:
        """Give the lease back if ``lease_owner`` still holds it."""
        await self._run("RELEASE", [self._keys.session(session_id).lease], [lease_owner], "release")

    async def remove(self, session_id: str, *, end: SessionEndData | None = None) -> bool:
        """Delete the record, its lease and index entries; True for one caller only.

        With ``end``, the end is kept for ``end_kept`` seconds in the same step.
        """
        keys = self._keys.session(session_id)
        payload = b"" if end is None else encode_end(self._codec, [], end)
        removed = await self._run(
            "REMOVE",
            [keys.rec, keys.lease, keys.deadlines, keys.types, keys.end],
            [session_id, payload, self._end_ms],
            "remove",
            True,
        )
        return bool(removed)

    async def ended(self, session_id: str) -> SessionEndData | None:
        """How a session removed in the last ``end_kept`` seconds ended, or None."""
        with self._translate("ended"):
            raw: bytes | None = await self._client.get(self._keys.session(session_id).end)  # type: ignore[assignment]
        if raw is None:
            return None
        try:
            return decode_end(self._codec.decode_value(raw))
        except (RecordError, ValueError, TypeError) as error:
            _log.warning("Session %s: unreadable end kept in Redis (%s)", session_id, error)
            return None

    # -- index -----------------------------------------------------------------------------

    async def claim_expired(self, now: float, *, limit: int, hold: float) -> list[str]:
        """Claim up to ``limit`` due sessions atomically, holding them until ``now + hold``.

        One pipelined read of every shard's due ids; when any are due, one batch of
        claims, one script per shard that has some (see ``_redis_index``).
        """
        if limit <= 0:
            return []
        with self._translate("claim"):
            return await claim_due(
                self._client,
                self._keys,
                self._calls,
                self._scripts["CLAIM"],
                now=_text(now),
                hold_until=_text(now + hold),
                limit=limit,
            )

    async def count_by_type(self) -> dict[str, int]:
        """Return the number of records per session type (exact: kept with the records)."""
        with self._translate("count"):
            return await count_types(self._client, self._keys)

    def scan(
        self, *, session_type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[SessionRecord]:
        """Yield the stored records, read-only: no lease taken, nothing moved or cleaned.

        Walks each shard's index with ZSCAN (never KEYS), in steps that do not block
        Redis, so it sees the sessions that :meth:`count_by_type` counts. A record that
        cannot be decoded is logged and skipped (and left where it is).
        """
        self._ensure_open()
        return scan_records(
            self._client,
            self._codec,
            self._keys,
            self._translate,
            session_type=session_type,
            limit=limit,
        )

    # -- end notices -----------------------------------------------------------------------

    async def publish_end(self, end: SessionEndData) -> None:
        """Tell every other process sharing the store that a session ended.

        A few publishes run at once; a failed one is retried a few times with a
        backoff, then :class:`~nyx_sessions.errors.StoreUnavailableError` is raised.
        """
        self._ensure_open()
        await self._notices.publish(end)

    def on_end(self, callback: Callable[[SessionEndData], None] | None) -> None:
        """Call ``callback`` for every end published by another process (None to stop)."""
        self._notices.on_end(callback)

    # -- helpers ---------------------------------------------------------------------------

    def _token(self) -> str:
        """Return a token unique to one write of this store (``tok`` in the record)."""
        return f"{self._instance}.{next(self._writes)}"

    def _cap(self) -> int:
        return self._codec.max_record_size or 0

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError("the RedisStore is closed")

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Raise store errors for Redis errors (after checking that the store is open)."""
        self._ensure_open()
        try:
            yield
        except _UNAVAILABLE as error:
            raise StoreUnavailableError(f"Redis is unreachable ({action}): {error}") from error
        except RedisError as error:
            raise StoreError(f"Redis refused {action}: {error}") from error

    async def _run(
        self, name: str, keys: list[str], args: list[Any], action: str, write: bool = False
    ) -> Any:
        """Run script ``name`` in the next batch of calls (see ``_redis_calls``)."""
        with self._translate(action):
            return await self._calls.run(self._scripts[name], keys, args, write=write)

    async def _answer(
        self, sid: str, keys: SessionKeys, reply: list[Any], owner: str | None
    ) -> SessionRecord | None:
        """Return the record of a READ or ACQUIRE reply; set an unusable one aside."""
        status = reply[0]
        if status == 0:
            return None
        if status == 3:
            await self._set_aside(sid, keys, owner, None, CorruptRecordError, "not a hash")
        if status == 4:
            why = f"{reply[1]} bytes, over the limit of {self._cap()}"
            await self._set_aside(sid, keys, owner, reply[3], RecordTooLargeError, why)
        _, rev, body, _, token = reply
        try:
            if not body:
                raise CorruptRecordError("the record has no body")
            record = self._codec.decode_record(body)
            if record.session_id != sid:
                raise CorruptRecordError(f"the record belongs to session {record.session_id}")
            if str(record.revision).encode() != rev:
                raise CorruptRecordError(f"revision {rev!r} disagrees with the record")
        except RecordVersionError as error:
            # Not corrupt: a newer release can read it, so leave it where it is.
            if owner is not None:
                await self.release(sid, lease_owner=owner)
            raise RecordVersionError(f"session {sid}: {error}") from error
        except RecordError as error:
            await self._set_aside(sid, keys, owner, token, CorruptRecordError, str(error))
        return record

    async def _set_aside(
        self,
        sid: str,
        keys: SessionKeys,
        owner: str | None,
        token: bytes | None,
        error: type[RecordError],
        why: str,
    ) -> NoReturn:
        """Move an unusable record aside and out of the indexes, then raise ``error``."""
        check = ["0", ""] if token is None else ["1", token]
        moved = await self._run(
            "SET_ASIDE",
            [keys.rec, keys.lease, keys.aside, keys.deadlines, keys.types],
            [owner or "", *check, sid],
            "set aside",
        )
        _log.warning(
            "Session %s: unusable record %s (%s)",
            sid,
            f"set aside at {keys.aside}" if moved else "already gone or rewritten",
            why,
        )
        raise error(f"session {sid}: unusable record ({why})")

    def __repr__(self) -> str:
        listening = self._notices.listening.is_set()
        state = "closed" if self._closed else "listening" if listening else "idle"
        return (
            f"<RedisStore prefix={self._keys.prefix!r} shards={self._keys.shards} "
            f"instance={self._instance[:8]} {state}>"
        )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: float | None) -> str:
    return "" if value is None else repr(float(value))
