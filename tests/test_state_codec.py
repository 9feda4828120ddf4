"""The msgpack state codec: round trips, encode errors with paths, corrupt input."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import enum
import uuid
import zoneinfo
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nyx_sessions.codecs.state import FORMAT_VERSION, StateCodec
from nyx_sessions.errors import (
    CorruptRecordError,
    RecordTooLargeError,
    RecordVersionError,
    StateEncodeError,
)
from nyx_sessions.stores.base import SessionRecord


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


class Shape(enum.Enum):
    POINT = (0, 0)


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


class Unregistered(enum.Enum):
    A = 1


CODEC = StateCodec(enums=[Colour, Level, Mode, Shape, Perm])
UTC = dt.UTC


def record(data: dict[Any, Any] | None = None, **fields: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "session_id": "abc",
        "session_type": "tests.Counter",
        "owner_id": 1234,
        "guild_id": 5,
        "channel_id": 6,
        "message_id": 7,
        "data": {} if data is None else data,
        "data_version": 3,
        "created_at": 1_700_000_000.25,
        "ttl": 60.0,
        "deadline": 1_700_000_060.25,
        "hard_deadline": None,
        "revision": 4,
        "result": None,
    }
    values.update(fields)
    return SessionRecord(**values)


def round_trip(data: dict[Any, Any]) -> dict[Any, Any]:
    decoded = CODEC.decode_record(CODEC.encode_record(record(data)))
    return decoded.data


# -- round trips -----------------------------------------------------------------------------


def test_record_round_trip() -> None:
    original = record({"count": 3}, result=[1, "two"], hard_deadline=1_700_003_600.0)
    assert CODEC.decode_record(CODEC.encode_record(original)) == original


def test_record_with_optional_fields_empty() -> None:
    original = record(guild_id=None, channel_id=None, message_id=None, ttl=None, deadline=None)
    assert CODEC.decode_record(CODEC.encode_record(original)) == original


def test_int_times_come_back_as_floats() -> None:
    decoded = CODEC.decode_record(CODEC.encode_record(record(created_at=5, ttl=60)))
    assert (decoded.created_at, decoded.ttl) == (5.0, 60.0)
    assert type(decoded.created_at) is float


def test_format_version_comes_first() -> None:
    raw = CODEC.encode_record(record())
    assert msgpack.unpackb(raw, strict_map_key=False, ext_hook=lambda c, p: None)[0] == 1
    assert FORMAT_VERSION == 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -1,
        2**64 - 1,
        -(2**63),
        1.5,
        float("inf"),
        "text é",
        b"\x00\xff",
        [1, [2, [3]]],
        (1, 2),
        (),
        ((1, 2), [3, (4,)]),
        {1, 2, 3},
        set(),
        frozenset({"a", "b"}),
        dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
        dt.date(2020, 2, 29),
        dt.timedelta(days=-2, seconds=5, microseconds=7),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Colour.RED,
        Level.HIGH,
        Mode.FAST,
        Shape.POINT,
        Perm.READ | Perm.WRITE,
    ],
    ids=repr,
)
def test_value_round_trips_with_its_type(value: Any) -> None:
    decoded = round_trip({"v": value})["v"]
    assert decoded == value
    assert type(decoded) is type(value)


def test_zoneinfo_datetime_keeps_its_zone_and_fold() -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    ambiguous = dt.datetime(2024, 10, 27, 2, 30, tzinfo=paris, fold=1)
    decoded = round_trip({"when": ambiguous})["when"]
    assert decoded.tzinfo == paris
    assert decoded.fold == 1
    assert decoded.utcoffset() == ambiguous.utcoffset() == dt.timedelta(hours=1)


def test_nested_and_as_dict_keys() -> None:
    data = {
        (1, "a"): "tuple key",
        frozenset({1, 2}): "frozenset key",
        Colour.BLUE: "enum key",
        uuid.UUID(int=5): "uuid key",
        dt.date(2024, 1, 1): {"inner": [(Level.LOW, {Colour.RED}), {"deep": (b"x",)}]},
        3: 4,
    }
    assert round_trip(data) == data


def test_bytes_like_come_back_as_bytes() -> None:
    data = round_trip({"a": bytearray(b"ab"), "m": memoryview(b"cd")})
    assert data == {"a": b"ab", "m": b"cd"}


def test_values() -> None:
    value = {"end": (Colour.RED, {1, 2}), "at": dt.datetime(2024, 1, 1, tzinfo=UTC)}
    assert CODEC.decode_value(CODEC.encode_value(value)) == value
    with pytest.raises(StateEncodeError, match=r"value\[0\]: cannot encode"):
        CODEC.encode_value([object()])
    with pytest.raises(CorruptRecordError):
        CODEC.decode_value(b"\xc1")


# -- encode errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": [1, 2, object()]}, r"^data\['items'\]\[2\]: cannot encode <class 'object'>$"),
        ({"t": (1, {"x": 1j})}, r"^data\['t'\]\[1\]\['x'\]: cannot encode <class 'complex'>$"),
        ({"s": {1, 2.5j}}, r"^data\['s'\] item 2\.5j: cannot encode"),
        ({(1, object()): 1}, r"^data key \(1, <object.*\)\[1\]: cannot encode"),
        (
            {"n": dt.datetime(2024, 1, 1)},
            r"data\['n'\]: naive datetime 2024-01-01T00:00:00 .*aware",
        ),
        ({"big": 2**64}, r"data\['big'\]: int 18446744073709551616 is out of msgpack's range"),
        ({"small": -(2**63) - 1}, r"data\['small'\]: int .* out of msgpack's range"),
        ({"e": Unregistered.A}, r"data\['e'\]: enum tests.test_state_codec.Unregistered is not"),
        ({"o": collections.OrderedDict(a=1)}, r"data\['o'\]: cannot encode .*OrderedDict"),
        ({"f": lambda: 1}, r"data\['f'\]: cannot encode <class 'function'>"),
    ],
)
def test_unencodable_values_fail_at_encode_with_their_path(
    data: dict[Any, Any], message: str
) -> None:
    with pytest.raises(StateEncodeError, match=message):
        CODEC.encode_record(record(data))


def test_unencodable_result_is_named() -> None:
    with pytest.raises(StateEncodeError, match=r"^result\[0\]: cannot encode"):
        CODEC.encode_record(record(result=[object()]))


def test_reference_cycle_is_reported() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(StateEncodeError, match=r"nested too deeply"):
        CODEC.encode_record(record({"loop": loop}))


def test_state_encode_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        CODEC.encode_record(record({"x": object()}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("session_id", 5), ("owner_id", "42"), ("owner_id", True), ("ttl", "60"), ("data", [])],
)
def test_wrong_field_types_fail_at_encode(field: str, value: Any) -> None:
    with pytest.raises(StateEncodeError, match=f"record.{field}: expected"):
        CODEC.encode_record(record(**{field: value}))


def test_record_too_large() -> None:
    codec = StateCodec(max_record_size=200)
    codec.encode_record(record({"x": "a" * 50}))
    with pytest.raises(RecordTooLargeError, match=r"is \d+ bytes, over the limit of 200 bytes"):
        codec.encode_record(record({"x": "a" * 500}))
    StateCodec(max_record_size=None).encode_record(record({"x": "a" * 5_000_000}))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_record_size"):
        StateCodec(max_record_size=0)
    with pytest.raises(TypeError, match="not an enum"):
        StateCodec(enums=[int])  # type: ignore[list-item]


# -- decode errors ---------------------------------------------------------------------------


def test_newer_version_is_refused() -> None:
    raw = msgpack.packb([FORMAT_VERSION + 1, "whatever", {"new": "layout"}])
    with pytest.raises(RecordVersionError, match="newer"):
        CODEC.decode_record(raw)


def test_newer_version_is_refused_before_its_unknown_extensions() -> None:
    raw = msgpack.packb([FORMAT_VERSION + 1, msgpack.ExtType(99, b"future")])
    with pytest.raises(RecordVersionError):
        CODEC.decode_record(raw)


def fields_of(original: SessionRecord) -> list[Any]:
    raw = CODEC.encode_record(original)
    unpacked: list[Any] = msgpack.unpackb(raw, strict_map_key=False)
    return unpacked


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f[:-2], "14 fields, expected 15 or 16"),
        (lambda f: [0, *f[1:]], "format version 0"),
        (lambda f: ["1", *f[1:]], "format version '1'"),
        (lambda f: [*f[:3], "not an int", *f[4:]], r"record.owner_id: expected int, got str"),
        (lambda f: [*f[:7], [1, 2], *f[8:]], r"record.data: expected dict, got list"),
        (lambda f: [*f[:13], 1.5, *f[14:]], r"record.revision: expected int, got float"),
        (lambda f: [*f, "extra"], "17 fields"),
        (lambda f: [*f[:15], ["not an id"]], "record.recent"),
    ],
)
def test_wrong_shape_is_corrupt(mutate: Any, message: str) -> None:
    raw = msgpack.packb(mutate(fields_of(record())), use_bin_type=True)
    with pytest.raises(CorruptRecordError, match=message):
        CODEC.decode_record(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc1",
        b"not msgpack at all",
        msgpack.packb({"a": 1}),
        msgpack.packb([]),
        msgpack.packb("string"),
    ],
)
def test_garbage_is_corrupt(raw: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        CODEC.decode_record(raw)


def test_trailing_bytes_are_corrupt() -> None:
    with pytest.raises(CorruptRecordError, match="trailing"):
        CODEC.decode_record(CODEC.encode_record(record()) + b"\x00")


def test_unknown_enum_names_the_enum() -> None:
    raw = CODEC.encode_record(record({"c": Colour.RED}))
    with pytest.raises(CorruptRecordError, match=r"unknown enum 'tests.test_state_codec.Colour'"):
        StateCodec().decode_record(raw)


def test_enum_value_that_no_longer_exists() -> None:
    fewer = enum.Enum("Colour", {"BLUE": "blue"}, module=__name__, qualname="Colour")  # type: ignore[misc]
    raw = CODEC.encode_record(record({"c": Colour.RED}))
    with pytest.raises(CorruptRecordError, match="'red' is not a member"):
        StateCodec(enums=[fewer]).decode_record(raw)


def test_unknown_extension_type() -> None:
    fields = fields_of(record())
    fields[7] = {"x": msgpack.ExtType(42, b"\x90")}
    with pytest.raises(CorruptRecordError, match="unknown extension type 42"):
        CODEC.decode_record(msgpack.packb(fields, use_bin_type=True))


def test_malformed_extension_payload() -> None:
    fields = fields_of(record())
    fields[7] = {"x": msgpack.ExtType(4, msgpack.packb([2024, 13]))}  # a datetime, badly
    with pytest.raises(CorruptRecordError):
        CODEC.decode_record(msgpack.packb(fields, use_bin_type=True))


@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_record_errors(raw: bytes) -> None:
    with contextlib.suppress(CorruptRecordError, RecordVersionError):
        CODEC.decode_record(raw)


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0))
def test_corrupted_records_only_raise_record_errors(noise: bytes, where: int) -> None:
    raw = bytearray(CODEC.encode_record(record({"t": (1, {2}), "c": Colour.RED})))
    position = where % len(raw)
    raw[position : position + len(noise)] = noise
    with contextlib.suppress(CorruptRecordError, RecordVersionError):
        CODEC.decode_record(bytes(raw))


ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
values = st.recursive(
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.uuids()
    | st.dates()
    | st.timedeltas()
    | st.datetimes(timezones=st.just(UTC))
    | st.sampled_from([*Colour, *Level, *Mode]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(ints | st.text(max_size=5), max_size=4)
        | st.sets(st.integers(min_value=0, max_value=99), max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(-5, 5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), values, max_size=5))
def test_any_supported_data_round_trips(data: dict[str, Any]) -> None:
    assert round_trip(data) == data
