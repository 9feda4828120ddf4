"""The state codec: session records and free values as versioned msgpack.

A record is one msgpack array whose first element is the format version::

    [FORMAT_VERSION, session_id, session_type, owner_id, guild_id, channel_id,
     message_id, data, data_version, created_at, ttl, deadline, hard_deadline,
     revision, result]

The version is read before anything else, so a record written by a newer release is
refused with :class:`~nyx_sessions.errors.RecordVersionError` instead of being misread.

Inside ``data`` and ``result`` (nested anywhere, dict keys included), the values that
msgpack lacks travel as extension types with stable codes:

====  =================  ===============================================================
code  type               payload
====  =================  ===============================================================
1     ``tuple``          the items, packed as an array
2     ``set``            the items, packed as an array
3     ``frozenset``      the items, packed as an array
4     ``datetime``       local fields, fold, UTC offset in microseconds, zone key or nil
5     ``date``           year, month, day
6     ``timedelta``      days, seconds, microseconds
7     ``uuid.UUID``      the 16 bytes
8     ``enum.Enum``      ``"module.QualName"`` of a registered enum, then the value
====  =================  ===============================================================

Only timezone-aware datetimes are accepted: a naive one means a different instant in
every process that reads it. Bytes-like values (``bytes``, ``bytearray``,
``memoryview``) come back as ``bytes``. Anything else is refused when it is encoded,
with a :class:`~nyx_sessions.errors.StateEncodeError` that names where it sits, e.g.
``data['items'][2]: cannot encode <class 'object'>``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import threading
import uuid
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgpack

from ..errors import (
    CorruptRecordError,
    RecordError,
    RecordTooLargeError,
    RecordVersionError,
    StateEncodeError,
)
from ..stores.base import SessionRecord

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FORMAT_VERSION", "StateCodec"]

FORMAT_VERSION: Final = 1
"""The record format this release writes; it reads this one and every older one."""

_T = TypeVar("_T")
_TUPLE, _SET, _FROZENSET, _DATETIME, _DATE, _TIMEDELTA, _UUID, _ENUM = range(1, 9)
_FIELDS_V1 = (15, 16)  # the 16th, the recent interaction ids, may be missing
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_MAX_DEPTH = 512  # msgpack's own nesting limit; the diagnosis walk stops there too
_INT_ONLY: Final = frozenset((int,))
_PLAIN = (type(None), bool, int, float, str, bytes, bytearray, memoryview)
_EXTENDED = (dt.datetime, dt.date, dt.timedelta, uuid.UUID)


class _UnencodableError(Exception):
    """Raised by the packer's ``default`` hook; the diagnosis walk finds the path."""


_PACK_ERRORS = (_UnencodableError, TypeError, ValueError, OverflowError, RecursionError)


class StateCodec:
    """Encodes session records and free values as versioned msgpack.

    Parameters
    ----------
    enums:
        Enum classes whose members may appear in session data; each is stored by the
        stable name ``f"{cls.__module__}.{cls.__qualname__}"`` and its value.
    max_record_size:
        The largest encoded record accepted, in bytes, or None for no cap.

    Examples
    --------
    >>> codec = StateCodec(enums=[Colour])  # doctest: +SKIP
    >>> codec.decode_record(codec.encode_record(record)) == record  # doctest: +SKIP
    True
    """

    __slots__ = ("_enum_by_name", "_enum_names", "_packers", "max_record_size")

    def __init__(
        self,
        *,
        enums: Iterable[type[enum.Enum]] = (),
        max_record_size: int | None = 1_000_000,
    ) -> None:
        if max_record_size is not None and max_record_size < 1:
            raise ValueError("max_record_size must be positive or None")
        self.max_record_size = max_record_size
        # One packer per thread for whole records, made once: a record is written on
        # every update. Values inside (the ext types' payloads) get packers of their own.
        self._packers = threading.local()
        self._enum_by_name: dict[str, type[enum.Enum]] = {}
        self._enum_names: dict[type[enum.Enum], str] = {}
        for cls in enums:
            if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
                raise TypeError(f"{cls!r} is not an enum.Enum subclass")
            name = f"{cls.__module__}.{cls.__qualname__}"
            if self._enum_by_name.get(name, cls) is not cls:
                raise ValueError(f"two registered enums share the name {name!r}")
            self._enum_by_name[name] = cls
            self._enum_names[cls] = name

    # -- records ---------------------------------------------------------------------------

    def encode_record(self, record: SessionRecord, *, revision: int | None = None) -> bytes:
        """Encode ``record``, or the record it would be at ``revision`` (without a copy).

        Raises
        ------
        StateEncodeError
            A field holds a value that cannot be encoded; the message names it.
        RecordTooLargeError
            The encoded record is larger than ``max_record_size``.
        """
        fields = _fields_v1(record, record.revision if revision is None else revision)
        try:
            try:
                packer = self._packers.packer
            except AttributeError:
                packer = self._packers.packer = self._new_packer()
            raw: bytes = packer.pack(fields)  # resets itself when it fails
        except _PACK_ERRORS as error:
            # The fast path failed: walk the free-form fields to say where and why.
            raise StateEncodeError(
                self._find_unencodable(record.data, "data", 0)
                or self._find_unencodable(record.result, "result", 0)
                or f"record: {_describe(error)}"
            ) from None
        if self.max_record_size is not None and len(raw) > self.max_record_size:
            raise RecordTooLargeError(
                f"record of session {record.session_id} is {len(raw)} bytes, "
                f"over the limit of {self.max_record_size} bytes"
            )
        return raw

    def decode_record(self, raw: bytes) -> SessionRecord:
        """Decode a record written by :meth:`encode_record` (this or an older release).

        Raises
        ------
        RecordVersionError
            The record was written by a newer format version.
        CorruptRecordError
            The bytes are not a record: undecodable, or of the wrong shape or types.
        """
        # The common case in one call: a well-formed record of this release's format.
        # Anything else (a newer or older format, bad bytes) takes the careful path below,
        # which reads the version before anything that a newer format may have changed.
        try:
            fields = msgpack.unpackb(
                raw, raw=False, strict_map_key=False, ext_hook=self._ext_hook, use_list=True
            )
            if (
                type(fields) is list
                and len(fields) in _FIELDS_V1
                and type(fields[0]) is int
                and fields[0] == FORMAT_VERSION
            ):
                return _record_v1(fields[1:])
        except Exception:  # the careful path below says what is wrong
            pass
        try:
            unpacker = msgpack.Unpacker(
                raw=False,
                strict_map_key=False,
                ext_hook=self._ext_hook,
                max_buffer_size=max(len(raw), 1),
            )
            unpacker.feed(raw)
            size = unpacker.read_array_header()
            # The version comes first, before anything a newer format may have changed.
            version = unpacker.unpack() if size else None
            if type(version) is not int or version < 1:
                raise CorruptRecordError(f"not a session record (format version {version!r})")
            if version > FORMAT_VERSION:
                raise RecordVersionError(
                    f"record format {version} is newer than this release reads "
                    f"(up to {FORMAT_VERSION}); upgrade nyx-sessions"
                )
            if size not in _FIELDS_V1:
                expected = " or ".join(map(str, _FIELDS_V1))
                raise CorruptRecordError(f"record has {size} fields, expected {expected}")
            fields = [unpacker.unpack() for _ in range(size - 1)]
            if unpacker.tell() != len(raw):
                raise CorruptRecordError("trailing bytes after the record")
        except RecordError:
            raise
        except Exception as error:
            raise CorruptRecordError(f"undecodable record: {_describe(error)}") from error
        return _record_v1(fields)

    # -- free values -----------------------------------------------------------------------

    def encode_value(self, value: Any) -> bytes:
        """Encode any value that may appear in session data (a pub/sub payload, say).

        Raises
        ------
        StateEncodeError
            ``value`` holds something that cannot be encoded; the message names it.
        """
        try:
            return self._packb(value)
        except _PACK_ERRORS as error:
            found = self._find_unencodable(value, "value", 0)
            raise StateEncodeError(found or f"value: {_describe(error)}") from None

    def decode_value(self, raw: bytes) -> Any:
        """Decode bytes written by :meth:`encode_value`.

        Raises
        ------
        CorruptRecordError
            The bytes cannot be decoded.
        """
        return self._unpack(raw)

    # -- msgpack plumbing ------------------------------------------------------------------

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(default=self._default, use_bin_type=True, strict_types=True)

    def _packb(self, value: Any) -> bytes:
        # strict_types: subclasses (IntEnum members, OrderedDict, ...) reach _default
        # instead of silently losing their type.
        packed: bytes = msgpack.packb(
            value, default=self._default, use_bin_type=True, strict_types=True
        )
        return packed

    def _unpack(self, raw: bytes) -> Any:
        try:
            return msgpack.unpackb(
                raw, raw=False, strict_map_key=False, ext_hook=self._ext_hook, use_list=True
            )
        except RecordError:
            raise
        except Exception as error:
            raise CorruptRecordError(f"undecodable value: {_describe(error)}") from error

    def _default(self, value: Any) -> msgpack.ExtType:
        # Enum first: IntEnum and StrEnum members are ints and strs too.
        if isinstance(value, enum.Enum):
            name = self._enum_names.get(type(value))
            if name is None:
                raise _UnencodableError
            return msgpack.ExtType(_ENUM, self._packb([name, value.value]))
        cls = type(value)
        if cls is tuple:
            return msgpack.ExtType(_TUPLE, self._packb(list(value)))
        if cls is set:
            return msgpack.ExtType(_SET, self._packb(list(value)))
        if cls is frozenset:
            return msgpack.ExtType(_FROZENSET, self._packb(list(value)))
        if cls is dt.datetime:
            return msgpack.ExtType(_DATETIME, self._packb(_datetime_fields(value)))
        if cls is dt.date:
            return msgpack.ExtType(_DATE, self._packb([value.year, value.month, value.day]))
        if cls is dt.timedelta:
            fields = [value.days, value.seconds, value.microseconds]
            return msgpack.ExtType(_TIMEDELTA, self._packb(fields))
        if cls is uuid.UUID:
            return msgpack.ExtType(_UUID, value.bytes)
        raise _UnencodableError

    def _ext_hook(self, code: int, payload: bytes) -> Any:
        if code == _UUID:
            return uuid.UUID(bytes=payload)
        decode = _EXT_DECODERS.get(code)
        if decode is None and code != _ENUM:
            raise CorruptRecordError(f"unknown extension type {code}")
        items = self._unpack(payload)
        if type(items) is not list:
            raise CorruptRecordError(f"extension type {code} does not hold an array")
        if decode is None:
            return self._decode_enum(*items)
        return decode(items)

    def _decode_enum(self, name: str, value: Any) -> enum.Enum:
        cls = self._enum_by_name.get(name)
        if cls is None:
            raise CorruptRecordError(
                f"unknown enum {name!r}: register it with StateCodec(enums=[...])"
            )
        try:
            return cls(value)
        except ValueError:
            raise CorruptRecordError(f"{value!r} is not a member of enum {name}") from None

    # -- error messages --------------------------------------------------------------------

    def _find_unencodable(self, value: Any, path: str, depth: int) -> str | None:
        """Walk ``value`` as the packer does; describe the first thing it cannot pack."""
        if depth >= _MAX_DEPTH:
            return f"{path}: nested too deeply (over {_MAX_DEPTH} levels, or a reference cycle)"
        cls = type(value)
        if isinstance(value, enum.Enum):
            if cls not in self._enum_names:
                return (
                    f"{path}: enum {cls.__module__}.{cls.__qualname__} is not registered "
                    "(pass it to StateCodec(enums=[...]))"
                )
            return self._find_unencodable(value.value, f"{path}.value", depth + 1)
        if cls is int and not _INT_MIN <= value <= _INT_MAX:
            return f"{path}: int {value} is out of msgpack's range [-2**63, 2**64 - 1]"
        if cls is dt.datetime and value.utcoffset() is None:
            return (
                f"{path}: naive datetime {value.isoformat()} has no timezone, so it means a "
                "different instant in every process; use an aware one, e.g. "
                "datetime.now(timezone.utc)"
            )
        if cls in _PLAIN or cls in _EXTENDED:
            return None
        if cls is dict:
            for key, item in value.items():
                found = self._find_unencodable(key, f"{path} key {key!r}", depth + 1)
                found = found or self._find_unencodable(item, f"{path}[{key!r}]", depth + 1)
                if found is not None:
                    return found
            return None
        if cls in (list, tuple):
            for index, item in enumerate(value):
                found = self._find_unencodable(item, f"{path}[{index}]", depth + 1)
                if found is not None:
                    return found
            return None
        if cls in (set, frozenset):
            for item in value:
                found = self._find_unencodable(item, f"{path} item {item!r}", depth + 1)
                if found is not None:
                    return found
            return None
        return f"{path}: cannot encode {cls!r}"

    def __repr__(self) -> str:
        return f"StateCodec(enums={len(self._enum_names)}, max_record_size={self.max_record_size})"


def _datetime_fields(value: dt.datetime) -> list[Any]:
    offset = value.utcoffset()
    if offset is None:
        raise _UnencodableError
    tz = value.tzinfo
    key = tz.key if isinstance(tz, zoneinfo.ZoneInfo) else None
    return [
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
        offset // dt.timedelta(microseconds=1),
        key,
    ]


def _datetime_from(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    microsecond: int,
    fold: int,
    offset_us: int,
    key: str | None,
) -> dt.datetime:
    tz: dt.tzinfo = dt.timezone(dt.timedelta(microseconds=offset_us))
    if key is not None:
        # Without the zone database the fixed offset still names the same instant.
        with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = zoneinfo.ZoneInfo(key)
    return dt.datetime(year, month, day, hour, minute, second, microsecond, tz, fold=fold)


_EXT_DECODERS: Final[dict[int, Callable[[list[Any]], Any]]] = {
    _TUPLE: tuple,
    _SET: set,
    _FROZENSET: frozenset,
    _DATETIME: lambda items: _datetime_from(*items),
    _DATE: lambda items: dt.date(*items),
    _TIMEDELTA: lambda items: dt.timedelta(*items),
}


def _record_v1(fields: list[Any]) -> SessionRecord:
    (
        session_id,
        session_type,
        owner_id,
        guild_id,
        channel_id,
        message_id,
        data,
        data_version,
        created_at,
        ttl,
        deadline,
        hard_deadline,
        revision,
        result,
        *rest,
    ) = fields
    recent = rest[0] if rest else []
    # The common case in one expression (each record is read on every update); the
    # checks below say what is wrong when it fails.
    if (
        type(session_id) is str
        and type(session_type) is str
        and type(owner_id) is int
        and (guild_id is None or type(guild_id) is int)
        and (channel_id is None or type(channel_id) is int)
        and (message_id is None or type(message_id) is int)
        and type(data) is dict
        and type(data_version) is int
        and type(created_at) is float
        and (ttl is None or type(ttl) is float)
        and (deadline is None or type(deadline) is float)
        and (hard_deadline is None or type(hard_deadline) is float)
        and type(revision) is int
        and type(recent) is list
        and _all_ints(recent)
    ):
        return SessionRecord(
            session_id,
            session_type,
            owner_id,
            guild_id,
            channel_id,
            message_id,
            data,
            data_version,
            created_at,
            ttl,
            deadline,
            hard_deadline,
            revision,
            result,
            tuple(recent),
        )
    bad = CorruptRecordError
    if type(recent) is not list or not _all_ints(recent):
        raise bad("record.recent: expected a list of interaction ids")
    return SessionRecord(
        session_id=_check(session_id, str, "session_id", bad),
        session_type=_check(session_type, str, "session_type", bad),
        owner_id=_check(owner_id, int, "owner_id", bad),
        guild_id=_check_optional(guild_id, int, "guild_id", bad),
        channel_id=_check_optional(channel_id, int, "channel_id", bad),
        message_id=_check_optional(message_id, int, "message_id", bad),
        data=_check(data, dict, "data", bad),
        data_version=_check(data_version, int, "data_version", bad),
        created_at=_check(created_at, float, "created_at", bad),
        ttl=_check_optional(ttl, float, "ttl", bad),
        deadline=_check_optional(deadline, float, "deadline", bad),
        hard_deadline=_check_optional(hard_deadline, float, "hard_deadline", bad),
        revision=_check(revision, int, "revision", bad),
        result=result,
        recent=tuple(recent),
    )


def _fields_v1(record: SessionRecord, revision: int) -> list[Any]:
    """Return the fields of ``record`` in format 1, checked (numbers made floats)."""
    guild_id, channel_id, message_id = record.guild_id, record.channel_id, record.message_id
    ttl, deadline, hard_deadline = record.ttl, record.deadline, record.hard_deadline
    recent = record.recent
    # The common case in one expression (a record is written on every update); the
    # careful path below converts ints to floats and says what is wrong.
    if (
        type(record.session_id) is str
        and type(record.session_type) is str
        and type(record.owner_id) is int
        and (guild_id is None or type(guild_id) is int)
        and (channel_id is None or type(channel_id) is int)
        and (message_id is None or type(message_id) is int)
        and type(record.data) is dict
        and type(record.data_version) is int
        and type(record.created_at) is float
        and (ttl is None or type(ttl) is float)
        and (deadline is None or type(deadline) is float)
        and (hard_deadline is None or type(hard_deadline) is float)
        and type(revision) is int
        and _all_ints(recent)
    ):
        return [
            FORMAT_VERSION,
            record.session_id,
            record.session_type,
            record.owner_id,
            guild_id,
            channel_id,
            message_id,
            record.data,
            record.data_version,
            record.created_at,
            ttl,
            deadline,
            hard_deadline,
            revision,
            record.result,
            list(recent),
        ]
    return [
        FORMAT_VERSION,
        _check(record.session_id, str, "session_id"),
        _check(record.session_type, str, "session_type"),
        _check(record.owner_id, int, "owner_id"),
        _check_optional(guild_id, int, "guild_id"),
        _check_optional(channel_id, int, "channel_id"),
        _check_optional(message_id, int, "message_id"),
        _check(record.data, dict, "data"),
        _check(record.data_version, int, "data_version"),
        _float(record.created_at, "created_at"),
        _optional_float(ttl, "ttl"),
        _optional_float(deadline, "deadline"),
        _optional_float(hard_deadline, "hard_deadline"),
        _check(revision, int, "revision"),
        record.result,
        _ints(recent, "recent"),
    ]


def _check(value: Any, cls: type[_T], name: str, error: type[Exception] = StateEncodeError) -> _T:
    # Exact types: a bool is not an owner id, and a str subclass would not round-trip.
    if type(value) is not cls:
        raise error(f"record.{name}: expected {cls.__name__}, got {type(value).__name__}")
    return value


def _check_optional(
    value: Any, cls: type[_T], name: str, error: type[Exception] = StateEncodeError
) -> _T | None:
    return None if value is None else _check(value, cls, name, error)


def _all_ints(items: Iterable[Any]) -> bool:
    # The types in one pass in C: a record's list of ids is read on every update.
    return set(map(type, items)) <= _INT_ONLY


def _ints(items: Iterable[Any], name: str) -> list[int]:
    values = list(items)
    if not _all_ints(values):
        for value in values:  # to name the culprit's type
            _check(value, int, name)
    return values


def _float(value: Any, name: str) -> float:
    if type(value) not in (int, float):
        raise StateEncodeError(f"record.{name}: expected float, got {type(value).__name__}")
    return float(value)


def _optional_float(value: Any, name: str) -> float | None:
    return None if value is None else _float(value, name)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
