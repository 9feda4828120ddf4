"""Arbitrary interaction payloads, through discord.py's parser and ``manager.update``.

The custom-id codec has property tests of its own (``tests/test_custom_id_codec.py``);
these feed whole interactions: custom ids that are ours with garbage tokens, forged or
mangled session ids, over-long, unicode, separators, non-strings; random interaction and
component types; missing and extra fields in ``data``. Two sessions are live meanwhile,
one ``OwnerOnly``, one open to all.

The oracle is written independently of the code under test (a regular expression for
"ours", plain Python for the dispatch), and discord.py's own verdict comes from a second
client with no manager attached: a payload that discord.py rejects there must be rejected
the same way with the manager, and one that it accepts must never raise.

Properties, per example:

- an interaction that belongs to a live session or names a well-formed session id is
  answered exactly once: one successful callback, never a 40060;
- every other interaction gets no callback from us;
- the live sessions' state changes exactly as the model says (only ``inc`` from an
  allowed user moves a count; nothing else does);
- no bookkeeping is left behind for ids that are not live (``manager._live``, timers).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nyx_sessions import AbstractSession, OwnerOnly, SessionManager
from nyx_sessions.testing import InteractionResult, ManualClock, OfflineDiscord, OfflineUser

from .support import callbacks_of, wait_idle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Written from the format's description, not from the codec: "nyx", ":", 1 to 64
# characters of [A-Za-z0-9_-], then the end or a separator.
OURS = re.compile(r"nyx:([A-Za-z0-9_-]{1,64})(?::|\Z)")
VALID_TOKEN = re.compile(r"(?:[^%]|%25|%3A)*", re.DOTALL)
SELECT_TYPES = {3, 5, 6, 7, 8}
MISSING = object()


class Target(AbstractSession[None]):
    """Counts ``inc``; answers as its second token says: edit, reply, boom, late, or not."""

    ttl = 60

    async def start(self) -> None:
        self.data.update(count=0, handled=0)
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.custom_id.push("inc").build()))
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("0", view=view)

    async def handle(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        self.data["handled"] += 1
        data: Any = interaction.data
        tokens = self.manager.codec.create_iterator(data["custom_id"]).get_tokens()
        action, how = [*tokens, "", ""][:2]
        if action == "inc":
            self.data["count"] += 1
        if how == "boom":
            raise RuntimeError("handler exploded")
        if how == "reply":
            await interaction.response.send_message("ok", ephemeral=True)
        elif how == "edit" and interaction.message is not None:
            await interaction.response.edit_message(content=str(self.data["count"]))
        elif how == "late":
            await interaction.response.defer()
            raise RuntimeError("exploded after answering")
        return True

    handle_button = handle_select_menu = handle_modal = handle


class Owned(Target):
    update_filter = OwnerOnly()


@dataclass
class Arena:
    offline: OfflineDiscord
    bare: discord.Client
    manager: SessionManager
    users: dict[str, OfflineUser]
    owned: Owned
    public: Target

    @property
    def live(self) -> dict[str, Target]:
        return {self.owned.id: self.owned, self.public.id: self.public}


@pytest.fixture
async def arena() -> AsyncIterator[Arena]:
    async with OfflineDiscord() as offline:
        bare = discord.Client(intents=discord.Intents.none())
        await offline.login(bare)  # discord.py alone: the reference for what it rejects
        manager = SessionManager(offline.client, clock=ManualClock())
        users = {
            "alice": offline.add_member("alice"),
            "mallory": offline.add_member("mallory"),
            "outsider": offline.add_user("outsider"),
        }
        sessions: list[Target] = []
        for cls in (Owned, Target):
            command = await offline.slash_command(users["alice"], "start", wait=False)
            session = cls(command.interaction)
            assert await manager.start(session)
            sessions.append(session)
        owned, public = sessions
        assert isinstance(owned, Owned)
        try:
            yield Arena(offline, bare, manager, users, owned, public)
        finally:
            await manager.aclose()


# -- strategies ----------------------------------------------------------------------------

NASTY = st.sampled_from(
    [
        ":",
        "::",
        "%",
        "%25",
        "%3A",
        "%3a",
        "%zz",
        "%2",
        "{",
        "}",
        "*",
        "\x00",
        "\n",
        "\u200b",
        "é",
        "🙂",
        "nyx",
        "nyx:",
        " ",
        "-",
        "_",
    ]
)
TOKEN = st.one_of(
    st.sampled_from(["inc", "edit", "reply", "boom", "late", ""]),
    st.text(max_size=10),
    NASTY,
)
VALID_ID = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
WHO = st.sampled_from(["owned", "public"])


def _join(head: str, tokens: list[str]) -> str:
    return head + "".join(":" + token for token in tokens)


@st.composite
def custom_ids(draw: st.DrawFn) -> tuple[str, Any]:
    """A symbolic custom id: (kind, parts); :func:`realise` makes it concrete."""
    kind = draw(
        st.sampled_from(
            [
                "session",
                "session",
                "session",
                "forged",
                "mangled",
                "prefix",
                "foreign",
                "overlong",
                "other",
            ]
        )
    )
    if kind == "session":
        return kind, (draw(WHO), draw(st.lists(TOKEN, max_size=4)))
    if kind == "forged":
        return kind, (draw(VALID_ID), draw(st.lists(TOKEN, max_size=3)))
    if kind == "mangled":
        how = draw(st.sampled_from(["swapcase", "truncate", "extend", "homoglyph", "brace"]))
        return kind, (draw(WHO), how, draw(st.lists(TOKEN, max_size=2)))
    if kind == "prefix":
        return kind, draw(st.one_of(st.text(max_size=80), NASTY))
    if kind == "foreign":
        return kind, draw(st.one_of(st.text(max_size=40), st.sampled_from(["Nyx:x", "nyx", ""])))
    if kind == "overlong":
        return kind, (draw(WHO), draw(st.integers(100, 20_000)))
    other = draw(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        )
    )
    return kind, other


def realise(arena: Arena, symbolic: tuple[str, Any]) -> Any:
    kind, parts = symbolic
    ids = {"owned": arena.owned.id, "public": arena.public.id}
    if kind == "session":
        return _join(f"nyx:{ids[parts[0]]}", parts[1])
    if kind == "forged":
        return _join(f"nyx:{parts[0]}", parts[1])
    if kind == "mangled":
        sid = ids[parts[0]]
        mangled = {
            "swapcase": sid.swapcase(),
            "truncate": sid[:-1],
            "extend": sid + "A",
            "homoglyph": sid[:-1] + "\u0430",  # Cyrillic a
            "brace": "{" + sid + "}",
        }[parts[1]]
        return _join(f"nyx:{mangled}", parts[2])
    if kind == "prefix":
        return f"nyx:{parts}"
    if kind == "overlong":
        return f"nyx:{ids[parts[0]]}:" + "x" * parts[1]
    return parts  # foreign text, or not a string at all


FIELD = st.one_of(
    st.just(MISSING),
    st.none(),
    st.integers(-3, 20),
    st.text(max_size=5),
    st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
COMPONENT_TYPE = st.one_of(
    st.just(2), st.sampled_from([2, 3, 5, 6, 7, 8]), st.sampled_from([2.0, 0, 4, 99]), FIELD
)
MODAL_COMPONENTS = st.one_of(
    FIELD,
    st.lists(
        st.fixed_dictionaries(
            {"type": st.integers(1, 20)},
            optional={
                "id": st.integers(0, 50),
                "custom_id": st.text(max_size=8),
                "value": st.text(max_size=8),
                "components": st.lists(st.dictionaries(st.text(max_size=5), st.integers())),
            },
        ),
        max_size=3,
    ),
)


@st.composite
def interactions(draw: st.DrawFn, types: list[int]) -> dict[str, Any]:
    """The symbolic parts of one interaction."""
    fields: dict[str, Any] = {
        "custom_id": MISSING if draw(st.integers(0, 9)) == 0 else draw(custom_ids()),
        "component_type": draw(COMPONENT_TYPE),
        "values": draw(FIELD),
        "resolved": draw(FIELD),
        "components": draw(MODAL_COMPONENTS),
    }
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=8), FIELD, max_size=2))
    return {
        "type": draw(st.sampled_from(types)),
        "user": draw(st.sampled_from(["alice", "alice", "mallory", "outsider"])),
        "with_message": draw(st.booleans()),
        "fields": fields,
        "extra": extra,
    }


def build_payload(arena: Arena, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Return the payload and its concrete custom id (MISSING when there is none)."""
    data: dict[str, Any] = {}
    custom_id: Any = MISSING
    for key, value in spec["extra"].items():
        if value is not MISSING:
            data[key] = value
    for key, value in spec["fields"].items():
        if key == "custom_id" and value is not MISSING:
            custom_id = data[key] = realise(arena, value)
        elif value is not MISSING:
            data[key] = value
    message = None
    if spec["with_message"]:
        message = arena.offline.message(arena.public.message_id or 0)
    payload = arena.offline.make_interaction_payload(
        arena.users[spec["user"]], spec["type"], data, message=message
    )
    return payload, custom_id


# -- the model -----------------------------------------------------------------------------


def named_session(custom_id: Any) -> str | None:
    if not isinstance(custom_id, str):
        return None
    match = OURS.match(custom_id)
    return match.group(1) if match else None


def handler_kind(interaction_type: int, component_type: Any) -> str | None:
    if interaction_type == 5:
        return "modal"
    if component_type == 2:
        return "button"
    try:
        return "select" if component_type in SELECT_TYPES else None
    except TypeError:  # unhashable: no handler fits
        return None


def increments(custom_id: str, session_id: str) -> bool:
    rest = custom_id[len("nyx:") + len(session_id) + 1 :]
    if len(custom_id) <= len("nyx:") + len(session_id):
        return False
    tokens = rest.split(":")
    return tokens[0] == "inc" and all(VALID_TOKEN.fullmatch(token) for token in tokens)


@dataclass
class Expectation:
    ours: bool
    counts: dict[str, tuple[int, int]]


def expect(arena: Arena, spec: dict[str, Any], custom_id: Any, *, dispatched: bool) -> Expectation:
    """What must happen: whether we answer, and each live session's (count, handled)."""
    counts = {sid: (s.data["count"], s.data["handled"]) for sid, s in arena.live.items()}
    session_id = named_session(custom_id) if dispatched else None
    if session_id is None:
        return Expectation(False, counts)
    session = arena.live.get(session_id)
    if session is None:  # forged: answered with "expired", nothing else moves
        return Expectation(True, counts)
    allowed = session is arena.public or spec["user"] == "alice"
    kind = handler_kind(spec["type"], spec["fields"]["component_type"])
    if allowed and kind is not None:
        count, handled = counts[session_id]
        counts[session_id] = (count + increments(custom_id, session_id), handled + 1)
    return Expectation(True, counts)


def outcome(arena: Arena, custom_id: Any, expected: Expectation) -> str:
    """A label for Hypothesis's statistics: which kind of interaction this was."""
    if not expected.ours:
        return "not ours"
    before = {sid: (s.data["count"], s.data["handled"]) for sid, s in arena.live.items()}
    session_id = named_session(custom_id)
    if session_id not in arena.live:
        return "ours, no such session"
    if before == expected.counts:
        return "ours, refused or not dispatched"
    return "ours, handled"


async def check(arena: Arena, result: InteractionResult, expected: Expectation) -> None:
    manager, offline = arena.manager, arena.offline
    if expected.ours:
        await result.wait_answered(5)
    await wait_idle(manager)
    callbacks = callbacks_of(offline, result.id)
    if expected.ours:
        assert len([r for r in callbacks if r.status < 300]) == 1, callbacks
        assert not [r for r in callbacks if (r.response or {}).get("code") == 40060], callbacks
    else:
        assert callbacks == []
    actual = {sid: (s.data["count"], s.data["handled"]) for sid, s in arena.live.items()}
    assert actual == expected.counts
    assert set(manager._live) == set(arena.live)
    assert len(manager._scheduler) == 2
    assert all(manager.get(sid) is session for sid, session in arena.live.items())


# -- the properties ------------------------------------------------------------------------


def discord_alone(arena: Arena, payload: dict[str, Any]) -> tuple[type[Exception] | None, bool]:
    """Parse ``payload`` with discord.py alone: what it raises, and if it reached the view store.

    The bare client's view store is wrapped to note that the parser got that far: an
    error raised inside it (discord.py's own view lookup, e.g. an unhashable component
    type) comes after the point where the manager takes its interactions.
    """
    view_store: Any = arena.bare._connection._view_store
    reached: list[bool] = []
    for name in ("dispatch_view", "dispatch_modal"):
        original = getattr(type(view_store), name).__get__(view_store)

        def noting(*args: Any, _original: Any = original) -> None:
            reached.append(True)
            _original(*args)

        setattr(view_store, name, noting)
    try:
        arena.bare._connection.parsers["INTERACTION_CREATE"](copy.deepcopy(payload))
    except Exception as error:
        return type(error), bool(reached)
    finally:
        view_store.__dict__.pop("dispatch_view", None)
        view_store.__dict__.pop("dispatch_modal", None)
    return None, bool(reached)


@FUZZ_SETTINGS
@given(spec=interactions([3, 3, 3, 5, 5, 1, 2, 4]))
async def test_gateway_payloads(arena: Arena, spec: dict[str, Any]) -> None:
    """Whatever discord.py's parser accepts, the attached manager handles without raising.

    Where discord.py alone raises before its view store, it raises the same with the
    manager (nothing of ours ran); where it raises inside its view store, an interaction
    of ours never gets there, and is answered.
    """
    payload, custom_id = build_payload(arena, spec)
    rejected, dispatched = discord_alone(arena, payload)
    expected = expect(arena, spec, custom_id, dispatched=dispatched)
    event(outcome(arena, custom_id, expected))
    if rejected is not None and not expected.ours:
        event("rejected by discord.py")
        with pytest.raises(rejected):
            await arena.offline.feed(payload, wait=False)
        await wait_idle(arena.manager)
        assert callbacks_of(arena.offline, int(payload["id"])) == []
        return
    result = await arena.offline.feed(payload, wait=False)
    await check(arena, result, expected)


@FUZZ_SETTINGS
@given(spec=interactions([3, 5]))
async def test_update_with_arbitrary_data(arena: Arena, spec: dict[str, Any]) -> None:
    """``manager.update`` on interactions made without discord.py's parser checks."""
    payload, custom_id = build_payload(arena, spec)
    offline = arena.offline
    try:
        interaction = discord.Interaction(data=payload, state=offline.client._connection)  # type: ignore[arg-type]
    except Exception:  # discord.py cannot even build it: never reaches us
        return
    result = InteractionResult(payload, fed_at=offline.world.clock.now(), source_message=None)
    offline.world.add_interaction(result)
    expected = expect(arena, spec, custom_id, dispatched=True)
    event(outcome(arena, custom_id, expected))
    assert await arena.manager.update(interaction) is expected.ours
    await check(arena, result, expected)


# -- what the fuzzing found ----------------------------------------------------------------


async def test_an_unhashable_component_type_is_not_a_handler_failure(arena: Arena) -> None:
    """Found by the fuzzing: discord.py hands ``component_type`` on untouched, and the
    manager takes the interaction before discord.py's own view store would hash it."""
    errors: list[BaseException] = []

    async def on_error(session: Any, interaction: Any, error: BaseException) -> None:
        errors.append(error)

    arena.manager.add_listener("error", on_error)
    payload = arena.offline.make_interaction_payload(
        arena.users["alice"], 3, {"custom_id": f"nyx:{arena.public.id}:inc", "component_type": []}
    )
    result = await arena.offline.feed(payload)
    await wait_idle(arena.manager)
    assert result.answered
    assert arena.public.data["handled"] == 0
    assert errors == []  # it was: TypeError("unhashable type: 'list'")
    assert not result.ephemeral  # it was: "Something went wrong..."
