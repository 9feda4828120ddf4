from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nyx_sessions.codecs
from nyx_sessions.codecs import (
    CustomIdBuilder,
    SessionCustomIdCodec,
    StringIterator,
    is_valid_session_id,
)
from nyx_sessions.errors import CustomIdError, CustomIdTooLongError, MalformedCustomIdError

SID = "Xq3v_9Kp2bTz-w"


@dataclass
class FakeSession:
    id: str


@pytest.fixture
def codec() -> SessionCustomIdCodec:
    return SessionCustomIdCodec()


def round_trip(codec: SessionCustomIdCodec, tokens: list[str]) -> list[str]:
    builder = codec.create_builder(SID)
    for token in tokens:
        builder.push(token)
    return codec.create_iterator(builder.build()).get_tokens()


def test_exports_are_sorted_and_complete() -> None:
    exported = nyx_sessions.codecs.__all__
    assert exported == sorted(exported)
    assert {
        "CustomIdBuilder",
        "SessionCustomIdCodec",
        "StringIterator",
        "is_valid_session_id",
    } <= set(exported)
    for name in exported:
        assert getattr(nyx_sessions.codecs, name) is not None


# --- format -------------------------------------------------------------------------------


def test_serialize_accepts_str_or_session(codec: SessionCustomIdCodec) -> None:
    assert codec.serialize(SID) == f"nyx:{SID}"
    assert codec.serialize(FakeSession(SID)) == f"nyx:{SID}"


def test_builder_exact_format(codec: SessionCustomIdCodec) -> None:
    built = codec.create_builder(FakeSession("abc")).push("page").push(2).build()
    assert built == "nyx:abc:page:2"
    assert codec.create_builder("abc").build() == "nyx:abc"


def test_contract_example(codec: SessionCustomIdCodec) -> None:
    custom_id = codec.create_builder("abc").push("inc").build()
    assert codec.create_iterator(custom_id).get_at(0) == "inc"


def test_custom_prefix_and_separator() -> None:
    codec = SessionCustomIdCodec("bot", separator="|")
    built = codec.create_builder("abc").push("a|b").push("c:d").build()
    assert built == "bot|abc|a%7Cb|c:d"
    assert codec.create_iterator(built).get_tokens() == ["a|b", "c:d"]
    assert codec.extract_session_id(built) == "abc"
    assert SessionCustomIdCodec().extract_session_id(built) is None


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("",), {}),
        (("a:b",), {}),
        (("a%b",), {}),
        ((), {"separator": ""}),
        ((), {"separator": "::"}),
        ((), {"separator": "%"}),
        ((), {"separator": "-"}),
        ((), {"separator": "_"}),
        ((), {"separator": "a"}),
        ((), {"separator": " "}),
        ((), {"separator": "·"}),
        ((), {"max_length": 0}),
        ((), {"max_length": 101}),
        ((), {"max_length": 4}),
    ],
)
def test_constructor_validation(args: tuple[str, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"prefix|separator|max_length"):
        SessionCustomIdCodec(*args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "é", "x" * 65, "a\n", "a%"])
def test_invalid_session_ids_are_rejected(codec: SessionCustomIdCodec, bad: str) -> None:
    assert not is_valid_session_id(bad)
    with pytest.raises(MalformedCustomIdError, match="session id"):
        codec.serialize(bad)
    with pytest.raises(MalformedCustomIdError):
        codec.create_builder(FakeSession(bad))


def test_non_str_session_id_is_rejected(codec: SessionCustomIdCodec) -> None:
    with pytest.raises(MalformedCustomIdError):
        codec.serialize(FakeSession(123))  # type: ignore[arg-type]
    with pytest.raises(MalformedCustomIdError):
        codec.create_builder(object())  # type: ignore[arg-type]


def test_valid_session_ids() -> None:
    assert is_valid_session_id("a")
    assert is_valid_session_id("A-z_09")
    assert is_valid_session_id("-" * 64)
    assert not is_valid_session_id("a" * 65)
    for not_a_str in (None, 1, b"abc", ["abc"]):
        assert not is_valid_session_id(not_a_str)


def test_repr(codec: SessionCustomIdCodec) -> None:
    assert repr(codec) == "SessionCustomIdCodec(prefix='nyx', separator=':', max_length=100)"
    builder = codec.create_builder("abc").push("x")
    assert repr(builder) == "CustomIdBuilder('nyx:abc', tokens=('x',))"
    assert repr(StringIterator(["a"])) == "StringIterator(['a'], position=0)"


# --- escaping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens",
    [
        [],
        [""],
        ["", ""],
        [":"],
        ["%"],
        ["%25"],
        ["%3A"],
        ["a:b%c", "::", "%%", "%:%"],
        ["héllo", "日本語", "🎉", "\x00", "\ud800"],
        ["nyx:abc:def"],
    ],
)
def test_tokens_round_trip(codec: SessionCustomIdCodec, tokens: list[str]) -> None:
    assert round_trip(codec, tokens) == tokens


def test_escaping_is_minimal(codec: SessionCustomIdCodec) -> None:
    built = codec.create_builder("abc").push("a:b%c/d").build()
    assert built == "nyx:abc:a%3Ab%25c/d"


@pytest.mark.parametrize(
    "custom_id",
    ["nyx:abc:%zz", "nyx:abc:%3", "nyx:abc:%", "nyx:abc:ok:a%", "nyx:abc:%3a", "nyx:abc:%41"],
)
def test_bad_escapes_raise(codec: SessionCustomIdCodec, custom_id: str) -> None:
    with pytest.raises(MalformedCustomIdError, match="bad escape"):
        codec.create_iterator(custom_id)


@pytest.mark.parametrize(
    "custom_id", ["", "nyx", "nyx:", "nyx::a", "foo:abc", "nyxx:abc", "NYX:abc", "nyx:a b"]
)
def test_foreign_ids_raise_on_iterate(codec: SessionCustomIdCodec, custom_id: str) -> None:
    with pytest.raises(MalformedCustomIdError, match="not a session custom id"):
        codec.create_iterator(custom_id)


def test_iterate_non_str_raises_malformed(codec: SessionCustomIdCodec) -> None:
    with pytest.raises(MalformedCustomIdError):
        codec.create_iterator(None)  # type: ignore[arg-type]


def test_no_tokens_versus_one_empty_token(codec: SessionCustomIdCodec) -> None:
    assert codec.create_iterator("nyx:abc").get_tokens() == []
    assert codec.create_iterator("nyx:abc:").get_tokens() == [""]


# --- length limit -------------------------------------------------------------------------


def test_exactly_100_characters_builds(codec: SessionCustomIdCodec) -> None:
    builder = codec.create_builder("abc").push("x" * (100 - len("nyx:abc:")))
    assert len(builder) == 100
    assert len(builder.build()) == 100


def test_101_characters_raises_with_length(codec: SessionCustomIdCodec) -> None:
    builder = codec.create_builder("abc").push("x" * (101 - len("nyx:abc:")))
    assert len(builder) == 101
    with pytest.raises(CustomIdTooLongError, match=r"is 101 characters long, over .* of 100"):
        builder.build()


def test_escapes_count_towards_the_limit(codec: SessionCustomIdCodec) -> None:
    builder = codec.create_builder("abc").push(":" * 31)  # 8 + 93 escaped characters
    assert len(builder) == 101
    with pytest.raises(CustomIdTooLongError, match="101"):
        builder.build()


def test_too_long_is_a_custom_id_error(codec: SessionCustomIdCodec) -> None:
    with pytest.raises(CustomIdError):
        codec.create_builder("abc").push("x" * 200).build()
    with pytest.raises(ValueError, match="characters long"):
        codec.create_builder("abc").push("x" * 200).build()


def test_custom_max_length() -> None:
    codec = SessionCustomIdCodec(max_length=10)
    assert codec.create_builder("abc").push("xy").build() == "nyx:abc:xy"
    with pytest.raises(CustomIdTooLongError, match="11 characters long, over the codec's limit"):
        codec.create_builder("abc").push("xyz").build()


# --- builder ------------------------------------------------------------------------------


def test_push_returns_self_and_coerces_ints(codec: SessionCustomIdCodec) -> None:
    builder = codec.create_builder("abc")
    assert builder.push(-3) is builder
    assert builder.tokens == ("-3",)


@pytest.mark.parametrize("bad", [True, 1.5, None, b"x"])
def test_push_rejects_other_types(codec: SessionCustomIdCodec, bad: object) -> None:
    with pytest.raises(TypeError, match="token"):
        codec.create_builder("abc").push(bad)  # type: ignore[arg-type]


def test_set_at(codec: SessionCustomIdCodec) -> None:
    builder = codec.create_builder("abc").push("page").push(1)
    assert builder.set_at(1, 2) is builder
    assert builder.build() == "nyx:abc:page:2"
    for index in (2, -1):
        with pytest.raises(IndexError):
            builder.set_at(index, "x")
    with pytest.raises(IndexError):
        codec.create_builder("abc").set_at(0, "x")


def test_clone_is_independent(codec: SessionCustomIdCodec) -> None:
    original = codec.create_builder("abc").push("a")
    clone = original.clone()
    assert isinstance(clone, CustomIdBuilder)
    clone.push("b").set_at(0, "z")
    assert original.tokens == ("a",)
    assert clone.tokens == ("z", "b")
    original.push("c")
    assert clone.tokens == ("z", "b")


def test_clone_push_leaves_original(codec: SessionCustomIdCodec) -> None:
    base = codec.create_builder("abc").push("page")
    prev, nxt = base.clone_push(1), base.clone_push(3)
    assert base.build() == "nyx:abc:page"
    assert prev.build() == "nyx:abc:page:1"
    assert nxt.build() == "nyx:abc:page:3"


def test_builder_has_slots(codec: SessionCustomIdCodec) -> None:
    with pytest.raises(AttributeError):
        codec.create_builder("abc").extra = 1  # type: ignore[attr-defined]


# --- iterator -----------------------------------------------------------------------------


def test_iterator_sequential_reads() -> None:
    it = StringIterator(["a", "b", "c"])
    assert len(it) == 3
    assert it.remaining == 3
    assert it.peek() == "a"
    assert it.next() == "a"
    assert it.peek() == "b"
    assert it.remaining == 2
    assert list(it) == ["b", "c"]
    assert it.remaining == 0
    assert it.next() is None
    assert it.peek() is None
    assert len(it) == 3
    it.reset()
    assert it.next() == "a"


def test_iterator_indexed_reads_ignore_position() -> None:
    it = StringIterator(("a", "b"))
    it.next()
    assert it.get_at(0) == "a"
    assert it.get_at(1) == "b"
    assert it.get_at(2) is None
    assert it.get_at(-1) is None
    assert it.get_tokens() == ["a", "b"]


def test_iterator_get_tokens_is_a_copy() -> None:
    source = ["a"]
    it = StringIterator(source)
    source.append("b")
    tokens = it.get_tokens()
    tokens.append("c")
    assert it.get_tokens() == ["a"]


def test_iterator_is_a_python_iterator() -> None:
    it = StringIterator(["a", "b"])
    assert iter(it) is it
    assert next(it) == "a"
    assert [*it] == ["b"]
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("007", 7),
        ("", None),
        ("-", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),
        ("1.0", None),
        ("١٢", None),
        ("²", None),
        ("0x10", None),
        ("--1", None),
        ("9" * 5000, None),
    ],
)
def test_get_int_at_parsing(token: str, expected: int | None) -> None:
    assert StringIterator([token]).get_int_at(0) == expected


def test_get_int_at_bounds_and_missing() -> None:
    it = StringIterator(["5"])
    assert it.get_int_at(0, min_value=5, max_value=5) == 5
    assert it.get_int_at(0, min_value=6) is None
    assert it.get_int_at(0, max_value=4) is None
    assert it.get_int_at(1) is None
    assert it.get_int_at(-1) is None


# --- extract_session_id -------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        0,
        1.5,
        b"nyx:abc",
        bytearray(b"nyx:abc"),
        ["nyx:abc"],
        object(),
        "",
        "nyx",
        "nyx:",
        "nyx::",
        "nyx::abc",
        ":abc",
        "abc",
        "nyxabc",
        "nyx;abc",
        "xnyx:abc",
        "nyx:" + "a" * 65,
        "nyx:" + "a" * 65 + ":x",
        "nyx:" + "a" * 1_000_000,
        "nyx:ab c:x",
        "nyx:abé:x",
        "nyx:\ud800",
        "nyx:abc\ud800",
        "nyx:\x00",
        "nyx:abc\n",
        "nyx:日本",
        "🎉" * 100,
    ],
)
def test_extract_session_id_rejects_garbage(codec: SessionCustomIdCodec, garbage: object) -> None:
    assert codec.extract_session_id(garbage) is None
    assert not codec.is_ours(garbage)


@pytest.mark.parametrize(
    ("custom_id", "expected"),
    [
        ("nyx:abc", "abc"),
        ("nyx:abc:", "abc"),
        ("nyx:abc:inc", "abc"),
        ("nyx:abc::%zz", "abc"),  # tokens are create_iterator's business
        ("nyx:" + "a" * 64, "a" * 64),
        ("nyx:" + "a" * 64 + ":" + "x" * 1000, "a" * 64),
        (f"nyx:{SID}:page:2", SID),
    ],
)
def test_extract_session_id_finds_ours(
    codec: SessionCustomIdCodec, custom_id: str, expected: str
) -> None:
    assert codec.extract_session_id(custom_id) == expected
    assert codec.is_ours(custom_id)


class Action(StrEnum):
    INC = "inc"


def test_str_subclasses_are_plain_strings(codec: SessionCustomIdCodec) -> None:
    built = codec.create_builder("abc").push(Action.INC).build()
    assert type(built) is str
    assert built == "nyx:abc:inc"
    assert codec.extract_session_id(Action.INC) is None
    assert codec.create_iterator(built).get_at(0) == Action.INC


# --- properties ---------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)
SEPARATORS = st.sampled_from([":", "|", "/", "~", "."])


@PROPERTY_SETTINGS
@given(tokens=st.lists(st.text()), separator=SEPARATORS)
def test_any_tokens_round_trip_or_are_too_long(tokens: list[str], separator: str) -> None:
    codec = SessionCustomIdCodec(separator=separator)
    builder = codec.create_builder(SID)
    for token in tokens:
        builder.push(token)
    try:
        built = builder.build()
    except CustomIdTooLongError:
        assert len(builder) > 100
        return
    assert len(built) <= 100
    assert codec.extract_session_id(built) == SID
    assert codec.create_iterator(built).get_tokens() == tokens


@PROPERTY_SETTINGS
@given(
    garbage=st.one_of(
        st.text(),
        st.text().map(lambda s: "nyx:" + s),
        st.binary(),
        st.none(),
        st.integers(),
        st.from_regex(r"nyx:[A-Za-z0-9_-]{0,70}(:.*)?", fullmatch=True),
    )
)
def test_extract_session_id_never_raises(garbage: object) -> None:
    result = SessionCustomIdCodec().extract_session_id(garbage)
    assert result is None or is_valid_session_id(result)
    if result is not None:
        assert isinstance(garbage, str)
        assert garbage.startswith(f"nyx:{result}")


@PROPERTY_SETTINGS
@given(
    custom_id=st.one_of(
        st.text(),
        st.text().map(lambda s: "nyx:abc:" + s),
        st.text(alphabet="%:3A25az").map(lambda s: "nyx:abc" + s),
    )
)
def test_create_iterator_returns_or_raises_malformed(custom_id: str) -> None:
    codec = SessionCustomIdCodec()
    try:
        it = codec.create_iterator(custom_id)
    except MalformedCustomIdError:
        return
    # Every accepted id has exactly one spelling: rebuilding it gives it back.
    session_id = codec.extract_session_id(custom_id)
    assert session_id is not None
    builder = codec.create_builder(session_id)
    for token in it.get_tokens():
        builder.push(token)
    assert len(builder) == len(custom_id)
    if len(custom_id) <= 100:
        assert builder.build() == custom_id
