from __future__ import annotations

import discord
import pytest
from redis.asyncio import Redis

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.sessions import ChoiceSession
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.redis_server import RedisServer

from .helpers import (
    collect_ends,
    ephemeral_text,
    forge_click,
    next_end,
    processes,
    start,
    wait_ended,
)

LUNCH = ["Pizza", "Sushi", "Salad"]


async def test_everyone_votes_once_and_a_moderator_closes(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    mods = offline.add_role("mods", permissions=discord.Permissions(manage_messages=True))
    alice, bob, carol = (offline.add_member(name) for name in ("alice", "bob", "carol"))
    mod = offline.add_member("mod", roles=[mods])
    session, message = await start(
        offline, manager, lambda i: ChoiceSession(i, "Lunch?", LUNCH), alice
    )
    assert message.content.startswith("**Lunch?**")
    assert [b["label"] for b in message.buttons] == [*LUNCH, "Close poll"]

    for user, option in ((alice, "Pizza"), (bob, "Sushi"), (carol, "Pizza")):
        await offline.click(user, message, label=option)
    assert session.tally() == {"Pizza": 2, "Sushi": 1, "Salad": 0}
    assert "Pizza: 2" in message.content and "*3 votes so far.*" in message.content

    # A second vote changes the first; the same vote again changes nothing.
    await offline.click(bob, message, label="Pizza")
    assert session.tally() == {"Pizza": 3, "Sushi": 0, "Salad": 0}
    again = await offline.click(bob, message, label="Pizza")
    assert ephemeral_text(again) == "You already voted for **Pizza**."
    assert session.tally()["Pizza"] == 3

    refused = await offline.click(bob, message, label="Close poll")
    assert "can close it" in ephemeral_text(refused)
    assert not session.ended
    await offline.click(mod, message, label="Close poll")
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.ENDED, {"Pizza": 3, "Sushi": 0, "Salad": 0})
    assert message.components == []
    assert message.content.endswith("*Poll closed: 3 votes.*")


async def test_votes_cannot_change_when_not_allowed(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(
        offline, manager, lambda i: ChoiceSession(i, "Lunch?", LUNCH, allow_change=False), alice
    )
    await offline.click(alice, message, label="Sushi")
    refused = await offline.click(alice, message, label="Salad")
    assert ephemeral_text(refused) == ("You already voted for **Sushi**; votes cannot be changed.")
    assert session.tally() == {"Pizza": 0, "Sushi": 1, "Salad": 0}
    await offline.click(alice, message, label="Close poll")
    assert (await wait_ended(session)).result == {"Pizza": 0, "Sushi": 1, "Salad": 0}


async def test_forged_votes(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    session, message = await start(
        offline, manager, lambda i: ChoiceSession(i, "Lunch?", LUNCH), alice
    )
    for index in ("3", "-1", "x", ""):
        custom_id = session.custom_id.push("vote").push(index).build()
        result = await forge_click(offline, alice, message, custom_id)
        assert ephemeral_text(result) == "That option does not exist."
    for custom_id in (session.custom_id.push("rig").build(), f"nyx:{session.id}:vote%"):
        result = await forge_click(offline, alice, message, custom_id)
        assert ephemeral_text(result) == "That button is no longer valid."
    assert session.data["votes"] == {}
    assert message.edits == 0


async def test_expiry_shows_the_final_tally(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    session, message = await start(
        offline,
        manager,
        lambda i: ChoiceSession(i, "Lunch?", LUNCH, duration=30 * 60),
        alice,
    )
    await offline.click(alice, message, label="Salad")
    await clock.advance(10 * 60)
    await offline.click(bob, message, label="Salad")  # votes do not extend the poll
    await clock.advance(20 * 60 + 1)
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.EXPIRED, {"Pizza": 0, "Sushi": 0, "Salad": 2})
    assert message.components == []
    assert message.content.endswith("*Poll closed: 2 votes.*")
    assert offline.requests[-1].route == "/channels/{channel_id}/messages/{message_id}"


async def test_option_bounds(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "poll", wait=False)
    interaction = command.interaction
    for options in (["one"], [str(n) for n in range(21)], ["a", "a"], ["a", ""], ["a", "x" * 81]):
        with pytest.raises(ValueError, match="option"):
            ChoiceSession(interaction, "?", options)
    options = [f"option {n}" for n in range(20)]
    session = ChoiceSession(interaction, "Many?", options)
    assert await manager.start(session)
    await command.wait_answered()
    assert command.message is not None
    rows = command.message.components
    assert [len(row["components"]) for row in rows] == [5, 5, 5, 5, 1]
    await offline.click(alice, command.message, label="option 19")
    assert session.tally()["option 19"] == 1


@pytest.mark.redis
async def test_survives_a_restart_on_redis(
    offline: OfflineDiscord,
    redis_server: RedisServer,
    redis_client: Redis,
    clock: ManualClock,
) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    async with processes(offline, redis_server, clock, [ChoiceSession]) as spawn:
        first = await spawn(first=True)
        session, message = await start(
            offline, first.manager, lambda i: ChoiceSession(i, "Lunch?", LUNCH), alice
        )
        await offline.click(alice, message, label="Pizza")
        await first.manager.aclose()

        second = await spawn()
        ends = collect_ends(second.manager)
        await offline.click(bob, message, label="Sushi", client=second.client)
        await offline.click(bob, message, label="Pizza", client=second.client)
        assert "Pizza: 2" in message.content
        await offline.click(alice, message, label="Close poll", client=second.client)
        end = await next_end(ends)
        assert (end.session_id, end.code) == (session.id, EndCode.ENDED)
        assert end.result == {"Pizza": 2, "Sushi": 0, "Salad": 0}
        assert message.components == []
