"""Every example bot, played in the offline Discord through its own slash commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import discord
import pytest

from examples import cog, confirm, counter, form, paginator, poll, quiz, signup_board, ticket_triage
from nyx_sessions import EndCode
from nyx_sessions.testing import InteractionResult, ManualClock, OfflineDiscord, OfflineMessage


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@asynccontextmanager
async def playing(bot: discord.Client, clock: ManualClock) -> AsyncIterator[OfflineDiscord]:
    """Log ``bot`` in offline; leaving closes it, and with it its manager."""
    async with OfflineDiscord(bot, clock=clock) as offline:
        yield offline


async def eventually(check: Callable[[], bool]) -> None:
    """Wait until ``check()`` holds: command handlers finish after their sessions end."""
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def message_of(result: InteractionResult) -> OfflineMessage:
    assert result.message is not None, f"{result!r} made no message"
    return result.message


def synced(offline: OfflineDiscord) -> list[str]:
    [sync] = [r for r in offline.requests if r.method == "PUT"]
    return sorted(command["name"] for command in sync.json)


async def test_counter(clock: ManualClock) -> None:
    bot = counter.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        assert synced(offline) == ["counter"]
        alice, bob = offline.add_member("alice"), offline.add_member("bob")
        message = message_of(await offline.slash_command(alice, "counter"))
        assert message.content == "Count: 0"
        await offline.click(alice, message, label="+1")
        await offline.click(alice, message, label="+1")
        refused = await offline.click(bob, message, label="+1")
        assert refused.ephemeral
        await offline.click(alice, message, label="Done")
        assert message.content == "Final count: 2"
        assert message.components == []

        idle = message_of(await offline.slash_command(bob, "counter"))
        await offline.click(bob, idle, label="+1")
        await clock.advance(61)
        assert idle.content == "Count: 1 (expired)"
        assert idle.components == []


async def test_paginator(clock: ManualClock) -> None:
    bot = paginator.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        assert synced(offline) == ["planets", "table"]
        alice = offline.add_member("alice")
        planets = message_of(await offline.slash_command(alice, "planets"))
        assert planets.embeds[0]["title"] == "Mercury"
        await offline.click(alice, planets, label="\u00bb")
        assert planets.embeds[0]["title"] == "Neptune"
        await offline.select(alice, planets, ["2"])
        assert planets.embeds[0]["title"] == "Earth"

        table = message_of(await offline.slash_command(alice, "table", {"factor": 7}))
        assert table.content == "**7 \u00d7 1 = 7**"
        opened = await offline.click(alice, table, label="1 / 12")
        await offline.submit_modal(alice, opened, {"page": "12"})
        assert table.content == "**7 \u00d7 12 = 84**"
        await offline.click(alice, table, label="Close")
        assert table.components == []

        await clock.advance(301)
        assert planets.components == []
        assert planets.embeds[0]["title"] == "Earth"


@pytest.mark.parametrize(("label", "reset"), [("Reset", True), ("Keep them", False)])
async def test_confirm(clock: ManualClock, label: str, reset: bool) -> None:
    bot = confirm.build_bot(clock=clock)
    bot.scores.update({1: 10, 2: 7})
    async with playing(bot, clock) as offline:
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "reset")
        message = message_of(command)
        assert message.content == "Reset all 2 scores? This cannot be undone."
        await offline.click(alice, message, label=label)
        assert all(button.get("disabled") for button in message.buttons)
        if reset:
            await eventually(lambda: bool(command.followups))
            [followup] = command.followups
            assert (followup.content, followup.ephemeral) == ("All scores were reset.", True)
            assert bot.scores == {}
        else:
            await asyncio.sleep(0.02)
            assert command.followups == []
            assert bot.scores == {1: 10, 2: 7}


async def test_confirm_unanswered(clock: ManualClock) -> None:
    bot = confirm.build_bot(clock=clock)
    bot.scores[1] = 10
    async with playing(bot, clock) as offline:
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "reset")
        await clock.advance(61)
        message = message_of(command)
        assert message.content.endswith("*No answer in time.*")
        assert bot.scores == {1: 10}


async def test_poll(clock: ManualClock) -> None:
    bot = poll.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        alice, bob, carol = (offline.add_member(name) for name in ("alice", "bob", "carol"))
        options = {"question": "Lunch?", "options": "Pizza, Sushi, Pizza, , Salad", "minutes": 5}
        message = message_of(await offline.slash_command(alice, "poll", options))
        assert [b["label"] for b in message.buttons] == ["Pizza", "Sushi", "Salad", "Close poll"]
        await offline.click(alice, message, label="Pizza")
        await offline.click(bob, message, label="Sushi")
        await offline.click(carol, message, label="Pizza")
        again = await offline.click(carol, message, label="Pizza")
        assert again.ephemeral
        refused = await offline.click(bob, message, label="Close poll")
        assert refused.ephemeral
        await offline.click(alice, message, label="Close poll")
        assert message.content.endswith("*Poll closed: 3 votes.*")
        await eventually(lambda: offline.messages[-1].content == "**Lunch?** \u2192 Pizza")

        timed = message_of(await offline.slash_command(bob, "poll", options))
        await offline.click(alice, timed, label="Salad")
        await offline.click(bob, timed, label="Sushi")
        await clock.advance(5 * 60 + 1)
        assert timed.components == []
        await eventually(lambda: offline.messages[-1].content == "**Lunch?** \u2192 Sushi / Salad")

        bad = await offline.slash_command(alice, "poll", {"question": "?", "options": "only one"})
        assert bad.ephemeral
        assert message_of(bad).content.startswith("Can't start that poll:")


async def test_form(clock: ManualClock) -> None:
    bot = form.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "profile")
        message = message_of(command)
        assert message.content.startswith("**Your profile** \u00b7 step 1 of 3")
        opened = await offline.click(alice, message, label="Fill in")
        await offline.submit_modal(alice, opened, {"name": "Alice", "age": "12"})
        assert "Age: must be between 13 and 120." in message.content
        opened = await offline.click(alice, message, label="Fill in")
        await offline.submit_modal(alice, opened, {"name": "Alice", "age": "30", "bio": "Hi there"})
        await offline.select(alice, message, ["they/them"])
        await offline.select(alice, message, ["mc", "chess"])
        await eventually(lambda: bool(command.followups))
        assert command.followups[0].content == "Saved, Alice!"
        assert bot.profiles[alice.id] == form.Profile(
            name="Alice", age=30, bio="Hi there", pronouns="they/them", games=["mc", "chess"]
        )


async def test_quiz_with_every_answer_in_time(clock: ManualClock) -> None:
    bot = quiz.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        alice = offline.add_member("alice")
        message = message_of(await offline.slash_command(alice, "quiz"))
        assert message.content == "**Question 1/3:** How many legs does a spider have?"
        stale = [b["custom_id"] for b in message.buttons]
        await offline.click(alice, message, label="8")
        assert message.content.startswith("Right! **Question 2/3:**")
        await offline.click(alice, message, label="Saturn")
        assert message.content.startswith("No, it was Jupiter. **Question 3/3:**")
        # A click on a button of an earlier question is refused.
        payload = offline.make_interaction_payload(
            alice,
            discord.InteractionType.component,
            {"custom_id": stale[0], "component_type": 2},
            message=message,
        )
        refused = await offline.feed(payload)
        assert message_of(refused).content == "That question is over."
        await offline.click(alice, message, label="Water")
        assert message.content == "Right! You scored **2/3**."
        await eventually(lambda: bot.best.get(alice.id) == 2)


async def test_quiz_time_limit_is_hard(clock: ManualClock) -> None:
    bot = quiz.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        alice = offline.add_member("alice")
        message = message_of(await offline.slash_command(alice, "quiz"))
        await clock.advance(20)
        await offline.click(alice, message, label="8")  # answers do not buy more time
        await clock.advance(11)
        assert message.content == "\u23f0 Time's up! You scored **1/3**."
        assert message.components == []
        await eventually(lambda: bot.best.get(alice.id) == 1)


async def test_cog(clock: ManualClock) -> None:
    bot = cog.build_bot(clock=clock)
    async with playing(bot, clock) as offline:
        assert synced(offline) == ["buy", "shop"]
        alice = offline.add_member("alice")
        shop = message_of(await offline.slash_command(alice, "shop"))
        assert shop.embeds[0]["title"] == "Lantern"
        await offline.click(alice, shop, label="\u203a")
        assert shop.embeds[0]["title"] == "Map"

        command = await offline.slash_command(alice, "buy", {"item": "sword"})
        question = message_of(command)
        assert question.content == "Buy a sword for 120 of your 150 coins?"
        await offline.click(alice, question, label="Yes")
        await eventually(lambda: bool(command.followups))
        assert command.followups[0].content == "You bought a sword; 30 coins left."
        assert bot.inventory[alice.id] == ["sword"]

        poor = await offline.slash_command(alice, "buy", {"item": "sword"})
        assert message_of(poor).content == "A sword costs 120 coins; you have 30."
        unknown = await offline.slash_command(alice, "buy", {"item": "axe"})
        assert message_of(unknown).content == "There is no axe here."
        declined = await offline.slash_command(alice, "buy", {"item": "map"})
        await offline.click(alice, message_of(declined), label="No")
        await asyncio.sleep(0.02)
        assert bot.coins[alice.id] == 30
    assert bot.manager.closed


# -- bots played through the pytest plugin's fixtures ----------------------------------


@pytest.fixture
def offline_client(request: pytest.FixtureRequest, manual_clock: ManualClock) -> discord.Client:
    """The example bot a test names (indirect parametrization), for offline_discord."""
    if request.param == "signup_board":
        redis_url: str = request.getfixturevalue("redis_url")
        return signup_board.build_bot(redis_url, clock=manual_clock)
    return ticket_triage.build_bot(clock=manual_clock)


@pytest.mark.parametrize("offline_client", ["ticket_triage"], indirect=True)
async def test_ticket_triage(offline_discord: OfflineDiscord, manual_clock: ManualClock) -> None:
    offline = offline_discord
    bot = offline.client
    assert isinstance(bot, ticket_triage.TriageBot)
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    message = await (await offline.slash_command(alice, "ticket")).wait_message()
    assert message.content == "New ticket: pick a category."
    refused = await offline.select(bob, message, ["bug"])
    assert refused.ephemeral
    opened = await offline.select(alice, message, ["bug"])
    assert opened.modal is not None
    await offline.submit_modal(alice, opened, {"title": "Crash on start", "priority": ["high"]})
    assert message.content == "[bug, high] Crash on start"
    await offline.click(alice, message, label="File it")
    assert message.content == "Filed: [bug, high] Crash on start"
    assert message.components == []
    await eventually(lambda: bool(bot.tickets))
    assert bot.tickets == [{"category": "bug", "title": "Crash on start", "priority": "high"}]
    session = await offline.wait_for_session(ticket_triage.TicketTriage)
    assert (await session.end_promise).code is EndCode.ENDED

    idle = await (await offline.slash_command(alice, "ticket")).wait_message()
    left = await offline.wait_for_session(ticket_triage.TicketTriage)
    await manual_clock.advance(121)
    assert (await left.end_promise).code is EndCode.EXPIRED
    await eventually(lambda: "expired" in idle.content)
    assert idle.content == "This ticket expired before it was filed; run /ticket again."
    assert idle.components == []


@pytest.mark.parametrize("offline_client", ["signup_board"], indirect=True)
async def test_signup_board_many_users_and_a_restart(
    offline_discord: OfflineDiscord, manual_clock: ManualClock, redis_url: str
) -> None:
    offline = offline_discord
    users = [offline.add_member(name) for name in ("ann", "ben", "cat", "dan", "eve")]
    organiser = users[0]
    command = await offline.slash_command(organiser, "signup", {"title": "Raid", "slots": 3})
    board = await command.wait_message()
    assert board.content == "**Raid** (0/3): nobody yet"
    for user in users[:3]:
        await offline.click(user, board, label="Join")
    assert board.content.startswith("**Raid** (3/3): ")
    full = await offline.click(users[3], board, label="Join")
    assert full.ephemeral
    assert full.followups == [] and offline.messages[-1].content == "The board is full."

    # A restart: the first process goes, a new one serves the next clicks from Redis.
    await offline.logout(offline.client)
    second = signup_board.build_bot(redis_url, clock=manual_clock)
    await offline.login(second)
    await offline.click(users[1], board, label="Leave", client=second)
    assert board.content == f"**Raid** (2/3): <@{organiser.id}>, <@{users[2].id}>"
    await offline.click(users[4], board, label="Join", client=second)
    refused = await offline.click(users[4], board, label="Close", client=second)
    assert refused.ephemeral
    await offline.click(organiser, board, label="Close", client=second)
    assert board.content.endswith("Closed.")
    assert board.components == []
    await second.close()
