"""Security: unguessable session ids, filters that hold against forged custom ids.

A custom id is user input: a client can send any string it likes in a component
interaction. What stands between a user and someone else's session is (1) the session
id, 96 random bits that cannot be guessed, and (2) the session's update filter, which
runs for every interaction whatever its custom id, component type or message says.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
import string
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

import discord
import pytest

from nyx_sessions import OwnerOnly, SessionManager
from nyx_sessions.codecs import is_valid_session_id
from nyx_sessions.session import new_session_id
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import ManualClock
from tests.stores.conftest import make_client

from .support import Tally, callbacks_of, succeeded, wait_idle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from redis.asyncio import Redis

    from nyx_sessions.testing import InteractionResult, OfflineDiscord, OfflineUser
    from tests.stores.redis_server import RedisServer

URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


# -- session ids -------------------------------------------------------------------------------


def decode(session_id: str) -> int:
    raw = base64.urlsafe_b64decode(session_id)
    assert len(raw) == 12
    return int.from_bytes(raw, "big")


def test_session_ids_carry_96_random_bits() -> None:
    """10,000 ids: distinct, 16 URL-safe characters, every bit and character uniform.

    Bounds are six standard deviations or more from the mean, so that a good generator
    fails them less than once in a billion runs.
    """
    ids = [new_session_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(session_id) == 16 and set(session_id) <= URLSAFE for session_id in ids)
    numbers = [decode(session_id) for session_id in ids]

    # Every one of the 96 bits is set half the time (sigma = 50 for 10,000 draws).
    for bit in range(96):
        ones = sum((number >> bit) & 1 for number in numbers)
        assert 4_700 <= ones <= 5_300, f"bit {bit} is set {ones} times in 10,000"

    # Every position uses the 64 characters evenly (chi-square, 63 degrees of freedom;
    # 160 is far out in the tail: p < 1e-9); the first never uses "-", which a command
    # line would take for an option, and the other 63 evenly (96 - 0.02 bits in all).
    assert not any(session_id.startswith("-") for session_id in ids)
    for position in range(16):
        alphabet = URLSAFE - {"-"} if position == 0 else URLSAFE
        seen = Counter(session_id[position] for session_id in ids)
        expected = len(ids) / len(alphabet)
        chi2 = sum((seen.get(c, 0) - expected) ** 2 / expected for c in alphabet)
        assert chi2 < 160, f"position {position}: chi-square {chi2:.0f}"

    # No shared prefixes beyond chance (about 4 characters for 10,000 ids).
    ordered = sorted(ids)
    longest = max(
        next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), 16)
        for a, b in itertools.pairwise(ordered)
    )
    assert longest <= 7

    # No sequence: consecutive ids are as different as random ones (48 bits on average)
    # and rise as often as they fall.
    distances = [bin(a ^ b).count("1") for a, b in itertools.pairwise(numbers)]
    assert min(distances) >= 16
    assert 47.5 <= sum(distances) / len(distances) <= 48.5
    rising = sum(a < b for a, b in itertools.pairwise(numbers)) / (len(ids) - 1)
    assert 0.45 <= rising <= 0.55


def test_session_ids_do_not_depend_on_the_random_module() -> None:
    """Seeding ``random`` (as tests and games do) must not make ids repeatable."""
    random.seed(1234)
    first = new_session_id()
    random.seed(1234)
    assert new_session_id() != first


# -- a bot, on either store --------------------------------------------------------------------


class Guarded(Tally):
    """A counter only its owner may use; counts every time a handler runs at all."""

    session_type = "reliability.guarded"
    update_filter = OwnerOnly()
    calls: ClassVar[list[str]] = []

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        Guarded.calls.append(self.id)
        return await super().handle_button(interaction)

    async def handle_select_menu(self, interaction: discord.Interaction[Any]) -> bool:
        Guarded.calls.append(self.id)
        return True

    async def handle_modal(self, interaction: discord.Interaction[Any]) -> bool:
        Guarded.calls.append(self.id)
        return True


class Bot:
    """One manager and its client, on a memory or a Redis store."""

    def __init__(self, manager: SessionManager, client: discord.Client) -> None:
        self.manager = manager
        self.client = client


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def bot(
    request: pytest.FixtureRequest, offline: OfflineDiscord, clock: ManualClock
) -> AsyncIterator[Bot]:
    Guarded.calls = []
    redis: Redis | None = None
    store: RedisStore | None = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")  # a sync fixture
        server.start()
        redis = make_client(server)
        await redis.flushdb()
        store = RedisStore(redis, clock=clock)
    manager = SessionManager(offline.client, store=store, clock=clock, sessions=[Guarded])
    try:
        await manager.open()
        yield Bot(manager, offline.client)
    finally:
        await manager.aclose()
        if store is not None and redis is not None:
            await store.aclose()
            await redis.aclose()


async def start(offline: OfflineDiscord, bot: Bot, user: OfflineUser) -> Guarded:
    command = await offline.slash_command(user, "guarded", client=bot.client, wait=False)
    session = Guarded(command.interaction)
    assert await bot.manager.start(session)
    await command.wait_answered()
    return session


async def forge(
    offline: OfflineDiscord,
    bot: Bot,
    user: OfflineUser,
    custom_id: str,
    *,
    kind: str = "button",
    on: Tally | None = None,
    wait: bool = True,
) -> InteractionResult:
    """Send an interaction with any custom id, from the message of ``on`` (or none)."""
    message = offline.message(on.message_id or 0) if on is not None else None
    if kind == "modal":
        data: dict[str, Any] = {"custom_id": custom_id, "components": []}
        interaction_type = discord.InteractionType.modal_submit
    else:
        data = {"custom_id": custom_id, "component_type": 2 if kind == "button" else 3}
        if kind == "select":
            data["values"] = ["inc"]
        interaction_type = discord.InteractionType.component
    payload = offline.make_interaction_payload(user, interaction_type, data, message=message)
    result = await offline.feed(payload, client=bot.client, wait=wait)
    await wait_idle(bot.manager)
    return result


async def stored(bot: Bot, session: Tally) -> tuple[int, float | None]:
    record = await bot.manager.store.get(session.id)
    assert record is not None
    return record.data["count"], record.deadline


# -- filters against forged custom ids ----------------------------------------------------------


async def test_a_filter_holds_whatever_the_custom_id_or_component(
    offline: OfflineDiscord, bot: Bot, clock: ManualClock
) -> None:
    """Mallory uses Alice's OwnerOnly session: its real button, forged ids from her own
    session's message and from no message, as a select and as a modal submit."""
    alice, mallory = offline.add_member("alice"), offline.add_member("mallory")
    victim = await start(offline, bot, alice)
    own = await start(offline, bot, mallory)
    await offline.click(alice, offline.message(victim.message_id or 0), label="+1")
    await wait_idle(bot.manager)
    before = await stored(bot, victim)
    calls_before = list(Guarded.calls)
    await clock.advance(5)  # a refresh would move the deadline

    head = f"nyx:{victim.id}"
    attempts = [
        await offline.click(
            mallory, offline.message(victim.message_id or 0), label="+1", client=bot.client
        ),
        await forge(offline, bot, mallory, f"{head}:inc", on=own),
        await forge(offline, bot, mallory, f"{head}:done", on=own),
        await forge(offline, bot, mallory, f"{head}:inc"),
        await forge(offline, bot, mallory, f"{head}:inc", kind="select", on=victim),
        await forge(offline, bot, mallory, f"{head}:inc", kind="modal"),
        await forge(offline, bot, mallory, f"{head}:inc:nyx:{own.id}", on=own),
    ]
    await wait_idle(bot.manager)
    for attempt in attempts:
        assert attempt.ephemeral and attempt.message is not None
        assert attempt.message.content == "Only the person who started this can use it."
        assert len(callbacks_of(offline, attempt.id)) == 1
    assert Guarded.calls == calls_before  # no handler ran
    assert await stored(bot, victim) == before  # no state change, no TTL refresh
    assert offline.message(victim.message_id or 0).content == "1"
    assert bot.manager.get(victim.id) is victim
    assert victim.end_code is None


async def test_a_custom_id_acts_only_on_the_session_it_names(
    offline: OfflineDiscord, bot: Bot
) -> None:
    """Other sessions' ids or tokens inside a custom id do not reach those sessions."""
    alice, mallory = offline.add_member("alice"), offline.add_member("mallory")
    victim = await start(offline, bot, alice)
    own = await start(offline, bot, mallory)
    # Mallory's own session, carrying Alice's session id and "done" in its tokens.
    click = await forge(offline, bot, mallory, f"nyx:{own.id}:inc:nyx:{victim.id}:done", on=own)
    assert succeeded(click)
    assert (await stored(bot, own))[0] == 1
    assert (await stored(bot, victim))[0] == 0
    assert victim.end_code is None and own.end_code is None
    assert Guarded.calls == [own.id]


@pytest.mark.parametrize(
    "mangle",
    [
        str.swapcase,
        lambda sid: sid[:-1],
        lambda sid: sid + "A",
        lambda sid: sid[:-1] + "\u0430",  # a Cyrillic a
        lambda sid: "{" + sid + "}",  # a Redis hash tag of its own
        lambda sid: sid[:8] + "*",  # a Redis key pattern
        lambda sid: sid + "\x00",
        lambda sid: " " + sid,
    ],
    ids=["swapcase", "truncated", "extended", "homoglyph", "braces", "glob", "nul", "space"],
)
async def test_near_miss_ids_never_reach_the_session(
    offline: OfflineDiscord, bot: Bot, mangle: Callable[[str], str]
) -> None:
    alice = offline.add_member("alice")
    victim = await start(offline, bot, alice)
    near_miss = mangle(victim.id)
    result = await forge(offline, bot, alice, f"nyx:{near_miss}:inc", on=victim, wait=False)
    if is_valid_session_id(near_miss):  # ours, but no such session: "expired"
        await result.wait_answered()
        assert result.message is not None and "expired" in result.message.content
    else:  # not one of our ids at all: left alone, for other views to take
        assert callbacks_of(offline, result.id) == []
    assert Guarded.calls == []
    assert (await stored(bot, victim))[0] == 0
    assert set(bot.manager._live) == {victim.id}


async def test_guessing_session_ids_finds_nothing(offline: OfflineDiscord, bot: Bot) -> None:
    """1,000 well-formed random ids against 20 live sessions: every one is "expired",
    and none leaves anything behind in the manager."""
    alice, mallory = offline.add_member("alice"), offline.add_member("mallory")
    sessions = [await start(offline, bot, alice) for _ in range(20)]
    guesser = random.Random(7)
    alphabet = sorted(URLSAFE)
    guesses = ["".join(guesser.choices(alphabet, k=16)) for _ in range(1_000)]
    results: list[InteractionResult] = []
    for batch in range(0, len(guesses), 50):  # a steady guesser, not a flood (see below)
        fed = []
        for guess in guesses[batch : batch + 50]:
            payload = offline.make_interaction_payload(
                mallory, 3, {"custom_id": f"nyx:{guess}:inc", "component_type": 2}
            )
            fed.append(await offline.feed(payload, client=bot.client, wait=False))
        await asyncio.gather(*(result.wait_answered() for result in fed))
        results += fed
    await wait_idle(bot.manager)
    assert all(r.message is not None and "expired" in r.message.content for r in results)
    assert Guarded.calls == []
    assert set(bot.manager._live) == {session.id for session in sessions}


async def test_forged_ids_create_nothing_in_the_store(offline: OfflineDiscord, bot: Bot) -> None:
    """Unauthenticated input must not grow the store: keys before == keys after."""
    redis: Any = getattr(bot.manager.store, "_client", None)
    alice, mallory = offline.add_member("alice"), offline.add_member("mallory")
    await start(offline, bot, alice)
    keys_before = sorted(await redis.keys("*")) if redis is not None else []
    records_before = await bot.manager.active()
    for index in range(200):
        forged = f"nyx:{new_session_id()}:inc" if index % 2 else f"nyx:forged-{index}"
        await forge(offline, bot, mallory, forged)
    assert await bot.manager.active() == records_before
    assert len(bot.manager._live) == 1
    if redis is not None:
        assert sorted(await redis.keys("*")) == keys_before


async def test_error_replies_reveal_nothing(offline: OfflineDiscord, bot: Bot) -> None:
    """A handler's exception text never reaches the user; the reply is the generic one."""
    alice = offline.add_member("alice")

    class Leaky(Guarded):
        session_type = "reliability.leaky"

        async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
            raise RuntimeError("db password is hunter2")

    bot.manager.register(Leaky)
    command = await offline.slash_command(alice, "leaky", client=bot.client, wait=False)
    session = Leaky(command.interaction)
    assert await bot.manager.start(session)
    click = await offline.click(
        alice, offline.message(session.message_id or 0), label="+1", client=bot.client
    )
    assert click.ephemeral and click.message is not None
    assert "Something went wrong" in click.message.content
    assert not [r for r in offline.requests if "hunter2" in repr(r.json)]


async def test_a_rejected_start_leaves_no_session(offline: OfflineDiscord, bot: Bot) -> None:
    """A start filter that refuses leaves nothing to click: no record, no live entry."""
    from nyx_sessions import UserIn

    alice, mallory = offline.add_member("alice"), offline.add_member("mallory")

    class AliceOnly(Guarded):
        session_type = "reliability.alice-only"
        start_filter = UserIn(alice.id)

    bot.manager.register(AliceOnly)  # a persistent store starts registered classes only
    command = await offline.slash_command(mallory, "x", client=bot.client, wait=False)
    session = AliceOnly(command.interaction)
    assert await bot.manager.start(session) is False
    assert await bot.manager.store.get(session.id) is None
    click = await forge(offline, bot, mallory, f"nyx:{session.id}:inc")
    assert click.message is not None and "expired" in click.message.content
    assert Guarded.calls == []


@pytest.mark.redis
async def test_a_flood_of_forged_ids_does_not_lock_out_the_owner(
    offline: OfflineDiscord, redis_server: RedisServer, redis_client: Redis, clock: ManualClock
) -> None:
    """300 forged clicks at once (each costs a Redis call), then the owner's own click."""
    store = RedisStore.from_url(redis_server.url, clock=clock)  # the library's own client
    manager = SessionManager(offline.client, store=store, clock=clock, sessions=[Guarded])
    try:
        await manager.open()
        bot = Bot(manager, offline.client)
        alice, mallory = offline.add_member("alice"), offline.add_member("mallory")
        session = await start(offline, bot, alice)
        flood = []
        for _ in range(300):
            payload = offline.make_interaction_payload(
                mallory, 3, {"custom_id": f"nyx:{new_session_id()}", "component_type": 2}
            )
            flood.append(await offline.feed(payload, wait=False))
        mine = await offline.click(alice, offline.message(session.message_id or 0), label="+1")
        await asyncio.gather(*(result.wait_answered() for result in flood))
        assert succeeded(mine)  # it was: "That couldn't be handled right now..."
    finally:
        await manager.aclose()
        await store.aclose()
