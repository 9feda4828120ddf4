"""The store's own wire: hand-packed requests, the Python reply reader, the protocol."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from nyx_sessions.stores._redis_batch import CommandBatcher, pack_command_py
from nyx_sessions.stores._redis_requests import (
    INDEX_STEP,
    KEYS_KEPT,
    RequestPacker,
    expiry_text,
)
from nyx_sessions.stores._redis_wire import MORE, PushNotice, PythonReader, new_reader
from nyx_sessions.stores.redis import RedisStore

from .test_store_contract import LEASE, make_record

if TYPE_CHECKING:
    from .redis_server import RedisServer

SHAS = {"ACQUIRE": "a" * 40, "COMMIT": "c" * 40, "RELEASE": "r" * 40}


# -- hand-packed requests --------------------------------------------------------------------


def test_acquire_is_packed_as_redis_py_packs_it() -> None:
    packer = RequestPacker("bot", SHAS, "inst")
    keys = ("EVALSHA", "a" * 40, 2, "bot:{s1}:rec", "bot:{s1}:lease")
    expected = (*keys, "owner-é", 30000, "")
    assert packer.acquire("s1", "owner-é", 30000, None) == pack_command_py(expected)
    known = (*keys, "B", 5, "inst.42")  # another owner, and a record it wrote
    assert packer.acquire("s1", "B", 5, 42) == pack_command_py(known)


@pytest.mark.parametrize("deadline", [1_700_000_060.25, None])
@pytest.mark.parametrize("release", [True, False])
@pytest.mark.parametrize("by_type", [True, False])
def test_commit_is_packed_as_redis_py_packs_it(
    deadline: float | None, release: bool, by_type: bool
) -> None:
    packer = RequestPacker("n%b", SHAS, "inst")  # format characters stay as they are
    body = b"\x00%d\r\n\xff body with %s and %b"
    expiry = expiry_text(math.inf if deadline is None else deadline + 3600)
    got = packer.commit(
        "s1", "tests.Ty pe", "A", 4, body, deadline, 3_660_000, release, 17,
        expiry if by_type else None,
    )  # fmt: skip
    script = (
        "EVALSHA", "c" * 40, 2, "n%b:{s1}:rec", "n%b:{s1}:lease", "A", 4, body,
        "" if deadline is None else repr(deadline), 3_660_000, "1" if release else "0",
        "inst.17",
    )  # fmt: skip
    index = (
        ("ZREM", "n%b:deadlines", "s1")
        if deadline is None
        else ("ZADD", "n%b:deadlines", deadline, "s1")
    )
    commands: list[tuple[Any, ...]] = [script, index]
    if by_type:
        commands.append(("ZADD", "n%b:type:tests.Ty pe", "XX", expiry, "s1"))
    assert got == b"".join(map(pack_command_py, commands))


def test_an_index_expiry_is_rounded_up() -> None:
    assert INDEX_STEP == 600
    assert expiry_text(1_700_000_000.0) == b"1700000400"
    assert expiry_text(1_700_000_399.5) == b"1700000400"
    assert expiry_text(1_700_000_400.0) == b"1700001000"
    assert expiry_text(math.inf) == b"inf"


def test_release_is_packed_as_redis_py_packs_it() -> None:
    packer = RequestPacker("nyx", SHAS, "inst")
    expected = ("EVALSHA", "r" * 40, 1, "nyx:{s1}:lease", "A")
    assert packer.release("s1", "A") == pack_command_py(expected)


def test_a_sessions_packed_keys_are_kept_for_the_last_sessions_only() -> None:
    packer = RequestPacker("bot", SHAS, "inst")
    first = packer.acquire("s0", "A", 5, None)
    assert packer.acquire("s0", "A", 5, None) == first  # packed from what was kept
    for index in range(1, KEYS_KEPT + 10):
        packer.release(f"s{index}", "A")
    assert len(packer._keys) == KEYS_KEPT
    assert "s0" not in packer._keys
    assert f"s{KEYS_KEPT + 9}" in packer._keys
    expected = ("EVALSHA", "a" * 40, 2, "bot:{s0}:rec", "bot:{s0}:lease", "A", 5, "")
    assert packer.acquire("s0", "A", 5, None) == first == pack_command_py(expected)


# -- the Python reply reader -----------------------------------------------------------------

STREAM = (
    b"+OK\r\n:-42\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n"
    b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n$3\r\nxyz\r\n"
    b"-NOSCRIPT No matching script.\r\n-WRONGTYPE Operation against a key\r\n"
    b"*0\r\n"
    # RESP3
    b"_\r\n#t\r\n#f\r\n,1.5\r\n(12345678901234567890\r\n=8\r\ntxt:abcd\r\n"
    b"%1\r\n$1\r\nk\r\n:2\r\n~2\r\n:1\r\n:2\r\n>2\r\n$7\r\nmessage\r\n:1\r\n"
    b"|1\r\n+ttl\r\n:3\r\n:7\r\n"
)


def read_all(reader: Any, chunks: list[bytes]) -> list[Any]:
    replies = []
    for chunk in chunks:
        reader.feed(chunk)
        while (reply := reader.gets()) is not MORE:
            replies.append(reply)
    return replies


def comparable(reply: Any) -> Any:
    if isinstance(reply, Exception):
        return (type(reply), str(reply))
    if isinstance(reply, list):
        return [comparable(item) for item in reply]
    return reply


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_the_python_reader_reads_replies_in_any_pieces(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    replies = read_all(PythonReader(), chunks)
    assert [comparable(reply) for reply in replies] == [
        b"OK", -42, b"he\r\no", b"", None, None,
        [1, [b"a", None], b"xyz"],
        (NoScriptError, "No matching script."),
        (ResponseError, "WRONGTYPE Operation against a key"),
        [],
        None, True, False, 1.5, 12345678901234567890, b"abcd",
        {b"k": 2}, [1, 2], [b"message", 1],
        7,
    ]  # fmt: skip
    assert isinstance(replies[-2], PushNotice)


def test_the_python_reader_reads_as_hiredis_does() -> None:
    hiredis_reader = new_reader()
    if isinstance(hiredis_reader, PythonReader):
        pytest.skip("hiredis is not installed")
    resp2 = STREAM[: STREAM.index(b"_\r\n")]
    expected = read_all(hiredis_reader, [resp2])
    assert [comparable(r) for r in read_all(PythonReader(), [resp2])] == [
        comparable(r) for r in expected
    ]


def test_the_python_reader_refuses_garbage() -> None:
    reader = PythonReader()
    reader.feed(b"?what\r\n")
    with pytest.raises(Exception, match="unknown reply type"):
        reader.gets()


# -- the protocol on a real server -----------------------------------------------------------


@pytest.mark.redis
async def test_the_batcher_works_with_the_python_reader(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nyx_sessions.stores._redis_wire._hiredis", None)
    batcher = CommandBatcher(redis_client)
    try:
        big = b"y" * 300_000
        replies = await asyncio.gather(
            batcher.run([("SET", "k", big), ("GET", "k")]),
            batcher.run([("HSET", "h", "f", 1), ("HGETALL", "h"), ("INCR", "h")]),
        )
        assert replies[0] == [b"OK", big]
        assert replies[1][0] == 1
        assert replies[1][1] in ({b"f": b"1"}, [b"f", b"1"])  # RESP3 (redis-py 8) or RESP2
        assert isinstance(replies[1][2], ResponseError)
    finally:
        await batcher.aclose(1.0)


@pytest.mark.redis
@pytest.mark.parametrize("protocol", [2, 3])
async def test_the_store_speaks_both_protocol_versions(
    redis_server: RedisServer, redis_client: Redis, protocol: int
) -> None:
    client = Redis(host=redis_server.host, port=redis_server.port, protocol=protocol)
    store = RedisStore(client)
    try:
        await store.open()
        await store.create(make_record("s1", deadline=1e10), lease_owner="A", lease=LEASE)
        await store.release("s1", lease_owner="A")
        record = await store.acquire("s1", lease_owner="B", lease=LEASE, wait=1.0)
        assert record is not None
        record.data["count"] = 5
        assert await store.commit(record, lease_owner="B", release=True) == 2
        loaded = await store.get("s1")
        assert loaded is not None
        assert loaded.data == {"count": 5}
        assert await store.remove("s1")
    finally:
        await store.aclose()
        await client.aclose()
