"""The state codec's reused record packer: what a failed encode leaves, and threads."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from nyx_sessions.codecs.state import StateCodec
from nyx_sessions.errors import StateEncodeError

from .test_store_contract import make_record


def test_a_failed_encode_leaves_nothing_behind_for_the_next() -> None:
    codec = StateCodec()
    good = make_record("good", data={"when": dt.date(2024, 1, 2), "pair": (1, 2)})
    expected = StateCodec().encode_record(good)
    with pytest.raises(StateEncodeError):
        codec.encode_record(make_record("bad", data={"items": [1, object()]}))
    assert codec.encode_record(good) == expected
    assert codec.decode_record(expected) == good


def test_threads_encoding_at_once_get_their_own_records() -> None:
    codec = StateCodec()
    records = [make_record(f"s{i}", data={"i": i, "at": {i, i + 1}}) for i in range(8)]
    expected = [StateCodec().encode_record(record) for record in records]
    failures: list[str] = []

    def encode(index: int) -> None:
        for _ in range(2_000):
            if codec.encode_record(records[index]) != expected[index]:
                failures.append(f"record {index}")
                return

    threads = [threading.Thread(target=encode, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
