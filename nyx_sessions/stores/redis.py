"""A session store on Redis, shared by every process of a bot and surviving restarts.

Key layout (``nyx`` is the prefix; every key of one session shares the hash tag
``{<session id>}``, so a session lives in one Redis Cluster slot)::

    nyx:{<sid>}:rec      hash: rev, type, deadline, body (msgpack record), tok
    nyx:{<sid>}:lease    string: the lease owner, with PX = the lease
    nyx:{<sid>}:corrupt  a record that could not be decoded, set aside for inspection
    nyx:deadlines        sorted set: session id -> deadline (a hint, see below)
    nyx:types            set: every session type ever stored
    nyx:type:<type>      sorted set: session id -> no earlier than its record's backstop
                         TTL ends (rounded up to 10 minutes)
    nyx:ends             pub/sub channel of end notifications

Atomic steps. Each Lua script touches ONE session's keys or ONE index key; the global
indexes are updated by separate commands sent in the same round trip (pipelined):

- ``create``: one script inserts the record at revision 1 and takes the lease (SET PX);
  the deadline and the per-type entry ride in the same round trip.
- ``acquire``: one script takes the lease (free, expired, or already ours) and returns
  the record; a busy lease is polled with a short backoff, bounded by ``wait``. When the
  record is still the one that this store's last commit wrote (its write token says
  so), the body stays in Redis and the committed record object is handed back.
- ``commit``: one script checks the lease owner and the revision (the fencing token),
  writes the record, bumps the revision and optionally releases; the deadline rides along,
  and so does the per-type entry unless it is known to hold the right expiry already.
- ``claim_expired``: one script on the deadline index moves due ids to ``now + hold``, so
  two processes never claim the same id. The claimed records are then read: an id whose
  record is gone or not yet due is re-indexed instead of returned. The record is the
  truth; an index entry that a refused write left behind is corrected the same way.
- ``remove``: one script deletes the record and the lease, so only one caller sees it
  exist; the index entries go in the same round trip.

Round trips. The commands of one operation travel together, and so do those of
operations that run at the same time: ``create``, ``get``, ``acquire``, ``commit``,
``release`` and ``remove`` hand their commands to a batcher (``_redis_batch``), which
writes them as requests on one connection of the store's own (``_redis_wire``, taken
from the client's pool), without redis-py's per-command layers; the frequent ones are
packed by hand (``_redis_requests``). Alone, an operation is one round trip; 32
concurrent clicks cost a few, not 64. Each operation still gets its own replies and its
own errors, and a NOSCRIPT (a restarted server) reloads the scripts and sends the
operation again.

A record's Redis TTL is only a backstop: its deadline plus an hour (none without a
deadline), for sessions that no process ever expired. A record that cannot be decoded
is renamed to ``:corrupt`` (kept, without a TTL) and dropped from the indexes; one
written by a newer format is left where it is for the release that can read it.

End notices are PUBLISHed on ``nyx:ends`` as msgpack ``[store instance id, session id,
code, reason, result]``. A named background task (``_redis_notices``), started by
:meth:`RedisStore.open` and stopped by :meth:`RedisStore.aclose`, listens, skips its own
store's notices and reconnects with a backoff when Redis goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from typing import TYPE_CHECKING, Any, NoReturn, Self

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..clock import Clock, LoopClock
from ..codecs.state import StateCodec
from ..end import SessionEndData
from ..errors import (
    CorruptRecordError,
    LeaseTimeoutError,
    RecordError,
    RecordVersionError,
    RevisionConflictError,
    StoreError,
    StoreUnavailableError,
)
from . import _redis_scripts as lua
from ._redis_batch import Command, CommandBatcher, pack_command
from ._redis_notices import EndNotices
from ._redis_requests import RequestPacker, backstop, expiry_text
from ._redis_scan import scan_records
from ._redis_written import WrittenRecords

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from redis.commands.core import AsyncScript

    from .base import SessionRecord

__all__ = ["RedisStore"]

_log = logging.getLogger("nyx_sessions.stores.redis")

_FIRST_PAUSE, _MAX_PAUSE = 0.002, 0.05  # lease polling
_DRAIN_WAIT = 1.0  # how long aclose() lets the requests in flight finish


class RedisStore:
    """Session records in Redis: persistent, shared by processes, Cluster-ready.

    Parameters
    ----------
    client:
        A ``redis.asyncio.Redis`` with ``decode_responses=False``. The store borrows
        it and never closes it; see :meth:`from_url` for a store that owns its client.
    prefix:
        The prefix of every key and of the pub/sub channel.
    codec:
        The state codec (register your enums there); ``StateCodec()`` by default.
    clock:
        The time source, shared with the manager (the manager passes its own). Lease
        expiry is measured by the Redis server itself.
    """

    persistent = True
    shared = True
    pipelined = True  # acquire, commit and release share the batcher's connection

    __slots__ = (
        "_batcher",
        "_client",
        "_clock",
        "_closed",
        "_codec",
        "_instance",
        "_known_types",
        "_notices",
        "_owns_client",
        "_prefix",
        "_requests",
        "_scripts",
        "_shas",
        "_writes",
        "_written",
    )

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "nyx",
        codec: StateCodec | None = None,
        clock: Clock | None = None,
    ) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"invalid key prefix {prefix!r}: non-empty, without braces")
        self._client = client
        self._owns_client = False
        self._prefix = prefix
        self._codec = codec or StateCodec()
        self._clock: Clock = clock or LoopClock()
        self._instance = uuid.uuid4().hex
        self._writes = itertools.count(1)
        self._written = WrittenRecords()
        self._known_types: set[str] = set()  # as many as there are session classes
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(getattr(lua, name)) for name in lua.__all__
        }
        self._shas = {name: script.sha for name, script in self._scripts.items()}
        self._requests = RequestPacker(prefix, self._shas, self._instance)
        self._batcher = CommandBatcher(client)
        self._notices = EndNotices(client, f"{prefix}:ends", self._codec, self._instance)
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "nyx",
        codec: StateCodec | None = None,
        clock: Clock | None = None,
        **client_kwargs: Any,
    ) -> Self:
        """Create a store with its own client, closed by :meth:`aclose`.

        ``client_kwargs`` go to ``redis.asyncio.Redis.from_url``.
        """
        store = cls(
            redis.asyncio.Redis.from_url(url, **client_kwargs),
            prefix=prefix,
            codec=codec,
            clock=clock,
        )
        store._owns_client = True
        return store

    def use_clock(self, clock: Clock) -> None:
        """Take the manager's clock."""
        self._clock = clock

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the scripts and start listening for end notices from other processes.

        A Redis that is down is not an error here: the listener keeps reconnecting.
        """
        self._ensure_open()
        if self._notices.started:
            return
        with contextlib.suppress(StoreError):
            await self._load_scripts()
        await self._batcher.connect()  # False while Redis is down: the first request retries
        await self._notices.start()

    async def aclose(self) -> None:
        """Stop the listener and close the client if the store opened it; idempotent."""
        if self._closed:
            return
        self._closed = True
        if not await self._notices.stop():
            _log.warning("The Redis end listener of %r did not stop in time", self)
        await self._batcher.aclose(_DRAIN_WAIT)
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
        sid, session_type, deadline = record.session_id, record.session_type, record.deadline
        rec, lease_key, _ = self._keys(sid)
        body = self._codec.encode_record(record, revision=1)
        ttl_ms, index_expiry = backstop(deadline, self._clock.now())
        token = f"{self._instance}.{next(self._writes)}"  # see _redis_scripts: ``tok``
        args = [lease_owner, _ms(lease), session_type, body, _text(deadline), ttl_ms, token]

        commands = [self._evalsha("CREATE", rec, lease_key, *args)]
        if deadline is not None:
            commands.append(("ZADD", self._deadlines, deadline, sid))
        commands.append(("SADD", self._types, session_type))
        commands.append(("ZADD", self._type_key(session_type), index_expiry, sid))
        created = (await self._run(commands, "create"))[0]
        if not created:
            await self._repair_index(sid, record.deadline, session_type)
            raise StoreError(f"session {sid} already exists")
        record.revision = 1
        self._known_types.add(session_type)

    async def get(self, session_id: str) -> SessionRecord | None:
        """Load a record without taking its lease, or None."""
        rec = self._keys(session_id)[0]
        try:
            [(rev, body, session_type)] = await self._run(
                [("HMGET", rec, "rev", "body", "type")], "get"
            )
        except StoreError as error:
            if not _is_wrongtype(error):
                raise
            return await self._corrupt(session_id, None, b"", None, "the key is not a hash")
        if rev is None and body is None:
            return None
        try:
            return self._parse(session_id, rev, body)
        except RecordError as error:
            return await self._refuse(session_id, error, body, session_type, None)

    async def acquire(
        self, session_id: str, *, lease_owner: str, lease: float, wait: float
    ) -> SessionRecord | None:
        """Take the lease of ``session_id`` and load its record.

        A lease held elsewhere is waited for up to ``wait`` s, counted from the first
        refusal.

        When Redis still holds this store's last commit of the session, the record is
        the very object that was committed then (as the memory store does), unless
        anything else happened to the session since: another acquire, a failed commit.
        """
        written = self._written
        request = self._requests.acquire(
            session_id, lease_owner, _ms(lease), written.known(session_id)
        )
        # The wait counts from the first refusal, on both clocks (either may be the one
        # that moves: a manual clock in tests). Most acquires are never refused, and
        # asking asyncio for the loop costs a getpid() system call on Python 3.11.
        loop: asyncio.AbstractEventLoop | None = None
        give_up = give_up_clock = 0.0
        pause = _FIRST_PAUSE
        while True:
            if self._closed:
                raise StoreError("the RedisStore is closed")
            try:
                replies = await self._batcher.send(request, 1)
            except (RedisError, OSError) as error:
                raise _failed("acquire", error) from error
            reply = replies[0]
            if type(reply) is not list:  # an error reply: NOSCRIPT is retried, others raise
                reply = (await self._send(request, 1, "acquire", replies))[0]
            status = reply[0]
            if status == 1:
                if len(reply) == 5:  # still our write: the record is the one committed
                    record = written.handed_back(session_id, reply[1])
                    if record is not None:
                        return record
                    request = self._requests.acquire(session_id, lease_owner, _ms(lease), None)
                    continue  # cannot happen; read the record to be sure
                written.forget(session_id)
                try:
                    return self._parse(session_id, reply[1], reply[2])
                except RecordError as error:
                    return await self._refuse(session_id, error, reply[2], reply[3], lease_owner)
            if status == 0:
                written.forget(session_id)
                return None
            if status == 3:
                written.forget(session_id)
                return await self._corrupt(session_id, None, b"", None, "the key is not a hash")
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
        sid, session_type, deadline = record.session_id, record.session_type, record.deadline
        backstop_ms, expiry = backstop(deadline, self._clock.now())
        index_expiry = expiry_text(expiry)
        refresh = self._written.committing(sid, record, index_expiry)  # kept on success
        revision = record.revision + 1
        body = self._codec.encode_record(record, revision=revision)
        write = next(self._writes)  # the write's token: this store's instance id, write
        request = self._requests.commit(
            sid, session_type, lease_owner, record.revision, body, deadline, backstop_ms,
            release, write, index_expiry if refresh else None,
        )  # fmt: skip
        count = 3 if refresh else 2
        if self._closed:
            raise StoreError("the RedisStore is closed")
        try:
            replies = await self._batcher.send(request, count)
        except (RedisError, OSError) as error:
            raise _failed("commit", error) from error
        reply = replies[0]
        if (
            type(reply) is not list
            or type(replies[1]) is not int
            or (refresh and type(replies[2]) is not int)
        ):
            reply = (await self._send(request, count, "commit", replies))[0]  # an error reply
        if reply[0] == 1:
            record.revision = revision
            self._written.committed(write, record, index_expiry)
            return revision
        await self._repair_index(sid, record.deadline, session_type)
        if reply[0] == 0:
            raise RevisionConflictError(f"session {sid} no longer exists")
        if reply[0] == -1:
            raise RevisionConflictError(f"session {sid} is leased by another owner")
        raise RevisionConflictError(
            f"session {sid} is at revision {reply[1]}, not {record.revision}"
        )

    async def release(self, session_id: str, *, lease_owner: str) -> None:
        """Give the lease back if ``lease_owner`` still holds it."""
        self._written.forget(session_id)
        await self._send(self._requests.release(session_id, lease_owner), 1, "release")

    async def ended(self, session_id: str) -> SessionEndData | None:
        """Not kept yet by this store."""
        return None

    async def remove(self, session_id: str, *, end: SessionEndData | None = None) -> bool:
        """Delete the record, its lease and its index entries; True for one caller only."""
        self._written.forget(session_id)
        rec, lease_key, _ = self._keys(session_id)
        known = sorted(self._known_types)

        commands = [self._evalsha("REMOVE", rec, lease_key), ("ZREM", self._deadlines, session_id)]
        # Ids are never reused, so dropping the id from every type this process has seen
        # (the session's own among them, as it was acquired first) is safe and saves a
        # round trip.
        commands += [("ZREM", self._type_key(name), session_id) for name in known]
        removed, raw_type = (await self._run(commands, "remove"))[0]
        session_type = raw_type.decode(errors="replace")
        with self._translate("remove"):
            if removed and session_type and session_type not in known:
                await self._client.zrem(self._type_key(session_type), session_id)
                self._known_types.add(session_type)
        return bool(removed)

    # -- index -----------------------------------------------------------------------------

    async def claim_expired(self, now: float, *, limit: int, hold: float) -> list[str]:
        """Claim up to ``limit`` due sessions atomically, holding them until ``now + hold``."""
        hold_until = _text(now + hold)
        with self._translate("claim"):
            raw_ids = await self._scripts["CLAIM"](
                [self._deadlines], [_text(now), limit, hold_until]
            )
            if not raw_ids:
                return []
            ids = [raw.decode() for raw in raw_ids]
            pipe = self._client.pipeline(transaction=False)
            for session_id in ids:
                pipe.hmget(self._keys(session_id)[0], ["deadline", "rev"])
            rows = await pipe.execute(raise_on_error=False)
            claimed: list[str] = []
            fixes: list[str] = []
            for session_id, row in zip(ids, rows, strict=True):
                if isinstance(row, Exception):  # not a hash: acquire() sets it aside
                    claimed.append(session_id)
                elif row[1] is None or not row[0]:
                    fixes += [session_id, hold_until, ""]  # gone, or never expires
                elif (deadline := _float_or_none(row[0])) is not None and deadline > now:
                    fixes += [session_id, hold_until, _text(deadline)]  # not due yet
                else:
                    claimed.append(session_id)  # due (or unreadable: acquire() finds out)
            if fixes:
                await self._scripts["REINDEX"]([self._deadlines], fixes)
        return claimed

    async def count_by_type(self) -> dict[str, int]:
        """Return the number of records per session type."""
        with self._translate("count"):
            members: set[bytes] = await self._client.smembers(self._types)  # type: ignore[assignment]
            types = sorted(raw.decode() for raw in members)
            self._known_types.update(types)
            pipe = self._client.pipeline(transaction=False)
            for session_type in types:
                # Entries of records that Redis expired by their backstop TTL.
                pipe.zremrangebyscore(self._type_key(session_type), "-inf", self._clock.now())
                pipe.zcard(self._type_key(session_type))
            counts = (await pipe.execute())[1::2] if types else []
        return {name: count for name, count in zip(types, counts, strict=True) if count}

    def scan(
        self, *, session_type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[SessionRecord]:
        """Yield the stored records, read-only: no lease taken, nothing moved or cleaned.

        Walks the per-type indexes with ZSCAN (never KEYS), in steps that do not block
        Redis, so it sees the sessions that :meth:`count_by_type` counts. A record that
        cannot be decoded is logged and skipped (and left where it is).
        """
        return scan_records(
            self._client,
            self._codec,
            self._prefix,
            self._translate,
            session_type=session_type,
            limit=limit,
        )

    # -- end notices -----------------------------------------------------------------------

    async def publish_end(self, end: SessionEndData) -> None:
        """Tell every other process sharing the store that a session ended."""
        with self._translate("publish"):
            await self._notices.publish(end)

    def on_end(self, callback: Callable[[SessionEndData], None] | None) -> None:
        """Call ``callback`` for every end published by another process (None to stop)."""
        self._notices.on_end(callback)

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _deadlines(self) -> str:
        return f"{self._prefix}:deadlines"

    @property
    def _types(self) -> str:
        return f"{self._prefix}:types"

    def _type_key(self, session_type: str) -> str:
        return f"{self._prefix}:type:{session_type}"

    def _keys(self, session_id: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:{{{session_id}}}"
        return f"{base}:rec", f"{base}:lease", f"{base}:corrupt"

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError("the RedisStore is closed")

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Raise store errors for Redis errors (after checking that the store is open)."""
        self._ensure_open()
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise StoreUnavailableError(f"Redis is unreachable ({action}): {error}") from error
        except RedisError as error:
            raise StoreError(f"Redis refused {action}: {error}") from error

    def _evalsha(self, name: str, rec: str, lease_key: str, *args: Any) -> Command:
        """Build the command that runs script ``name`` on one session's record and lease."""
        return ("EVALSHA", self._shas[name], 2, rec, lease_key, *args)

    async def _run(self, commands: list[Command], action: str) -> list[Any]:
        """Send ``commands`` in the next batch (see :meth:`_send`)."""
        return await self._send(b"".join(map(pack_command, commands)), len(commands), action)

    async def _send(
        self, request: bytes, count: int, action: str, replies: list[Any] | None = None
    ) -> list[Any]:
        """Send a request of ``count`` packed commands in the next batch; their replies.

        ``replies`` are those of the request already sent once (acquire and commit send
        it themselves, and come here when a reply is not what they expect). A NOSCRIPT
        of the first command reloads the scripts and sends it again. Raises
        StoreUnavailableError when Redis cannot be reached, and StoreError for the
        first error reply among them (the ``ResponseError`` is its cause).
        """
        for _ in range(2):
            if replies is None:
                if self._closed:
                    raise StoreError("the RedisStore is closed")
                try:
                    replies = await self._batcher.send(request, count)
                except (RedisError, OSError) as error:
                    raise _failed(action, error) from error
            if not isinstance(replies[0], NoScriptError):
                for reply in replies:
                    if isinstance(reply, ResponseError):
                        raise StoreError(f"Redis refused {action}: {reply}") from reply
                return replies
            await self._load_scripts()  # the server restarted or its scripts were flushed
            replies = None
        raise StoreError("Redis keeps forgetting the store's scripts")

    async def _load_scripts(self) -> None:
        with self._translate("script load"):
            pipe = self._client.pipeline(transaction=False)
            for script in self._scripts.values():
                pipe.script_load(script.script)
            await pipe.execute()

    def _parse(self, sid: str, rev: Any, body: Any) -> SessionRecord:
        """Decode a record read from Redis and check it against its hash's fields."""
        if not body:
            raise CorruptRecordError("the record has no body")
        record = self._codec.decode_record(body)
        if record.session_id != sid:
            raise CorruptRecordError(f"the record belongs to session {record.session_id}")
        if str(record.revision).encode() != rev:
            raise CorruptRecordError(f"revision {rev!r} disagrees with the record")
        self._known_types.add(record.session_type)
        return record

    async def _refuse(
        self, sid: str, error: RecordError, body: Any, session_type: Any, owner: str | None
    ) -> NoReturn:
        """Deal with a record that :meth:`_parse` refused, then raise."""
        if isinstance(error, RecordVersionError):
            # Not corrupt: a newer release can read it, so leave it where it is.
            if owner is not None:
                await self.release(sid, lease_owner=owner)
            raise RecordVersionError(f"session {sid}: {error}") from error
        await self._corrupt(sid, owner, body or b"", session_type, str(error))

    async def _corrupt(
        self, sid: str, owner: str | None, body: bytes, session_type: Any, why: str
    ) -> NoReturn:
        """Move an undecodable record aside, drop it from the indexes, then raise."""
        rec, lease_key, aside = self._keys(sid)
        args = [owner or "", "1" if body else "0", body]
        with self._translate("set aside"):
            moved, stored_type = await self._scripts["SET_ASIDE"]([rec, lease_key, aside], args)
            if moved:
                types = (self._known_types | {stored_type.decode(errors="replace")}) - {""}
                pipe = self._client.pipeline(transaction=False)
                pipe.zrem(self._deadlines, sid)
                for session_type in sorted(types):  # the record's own type may be unreadable
                    pipe.zrem(self._type_key(session_type), sid)
                await pipe.execute()
        _log.warning(
            "Session %s: corrupt record %s (%s)",
            sid,
            f"set aside at {aside}" if moved else "already gone or rewritten",
            why,
        )
        raise CorruptRecordError(f"session {sid}: corrupt record ({why})")

    async def _repair_index(self, sid: str, wrote: float | None, session_type: str) -> None:
        """Undo what a refused write's pipelined index updates got wrong."""
        try:
            with self._translate("repair"):
                deadline_raw, stored_type = await self._client.hmget(
                    self._keys(sid)[0], ["deadline", "type"]
                )
                truth = _float_or_none(deadline_raw)
                if truth != wrote:
                    await self._scripts["REINDEX"](
                        [self._deadlines], [sid, _text(wrote), _text(truth)]
                    )
                if stored_type != session_type.encode():
                    await self._client.zrem(self._type_key(session_type), sid)
        except StoreError as error:  # the index is a hint; claims correct it later
            _log.debug("Session %s: index not repaired (%s)", sid, error)

    def __repr__(self) -> str:
        listening = self._notices.listening.is_set()
        state = "closed" if self._closed else "listening" if listening else "idle"
        return f"<RedisStore prefix={self._prefix!r} instance={self._instance[:8]} {state}>"


def _failed(action: str, error: BaseException) -> StoreError:
    """Return the store error for a request that failed as a whole."""
    if isinstance(error, RedisConnectionError | RedisTimeoutError | OSError):
        return StoreUnavailableError(f"Redis is unreachable ({action}): {error}")
    return StoreError(f"Redis refused {action}: {error}")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _float_or_none(raw: bytes | str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _is_wrongtype(error: StoreError) -> bool:
    return isinstance(error.__cause__, ResponseError) and "WRONGTYPE" in str(error.__cause__)
