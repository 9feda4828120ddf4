from __future__ import annotations

import pytest
from redis.asyncio import Redis

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.sessions import ConfirmSession
from nyx_sessions.testing import ManualClock, OfflineDiscord, OfflineMessage
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


def buttons(message: OfflineMessage) -> list[tuple[str, bool]]:
    return [(b["label"], bool(b.get("disabled"))) for b in message.buttons]


@pytest.mark.parametrize(
    ("label", "result", "line"), [("Delete", True, "Confirmed."), ("Keep", False, "Cancelled.")]
)
async def test_answer(
    offline: OfflineDiscord, manager: SessionManager, label: str, result: bool, line: str
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(
        offline,
        manager,
        lambda i: ConfirmSession(
            i, "Delete the logs?", confirm_label="Delete", cancel_label="Keep", danger=True
        ),
        alice,
    )
    assert message.content == "Delete the logs?"
    assert buttons(message) == [("Delete", False), ("Keep", False)]
    assert message.buttons[0]["style"] == 4  # danger
    click = await offline.click(alice, message, label=label)
    assert click.message is message
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.ENDED, result)
    assert message.content == f"Delete the logs?\n\n*{line}*"
    assert buttons(message) == [("Delete", True), ("Keep", True)]
    assert message.edits == 1  # the answer's own edit; end() did not edit again


async def test_defaults_and_other_users(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    session, message = await start(offline, manager, ConfirmSession, alice)
    assert message.content == "Are you sure?"
    assert buttons(message) == [("Yes", False), ("No", False)]
    assert message.buttons[0]["style"] == 3  # success
    refused = await offline.click(bob, message, label="Yes")
    assert ephemeral_text(refused) == "Only the person who started this can use it."
    assert not session.ended


async def test_forged_tokens(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, ConfirmSession, alice)
    for custom_id in (
        session.custom_id.push("maybe").build(),
        session.custom_id.build(),
        f"nyx:{session.id}:%41",
    ):
        result = await forge_click(offline, alice, message, custom_id)
        assert ephemeral_text(result) == "That button is no longer valid."
    assert not session.ended
    assert message.edits == 0


async def test_expiry_disables_the_buttons_after_the_token_is_gone(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")

    class Patient(ConfirmSession):
        ttl = 20 * 60  # longer than an interaction token lives

    session, message = await start(offline, manager, lambda i: Patient(i, "Go?"), alice)
    await clock.advance(20 * 60 + 1)
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.EXPIRED, None)
    assert message.content == "Go?\n\n*No answer in time.*"
    assert buttons(message) == [("Yes", True), ("No", True)]
    # The start interaction's token is dead by now: the edit went by message id.
    assert offline.requests[-1].route == "/channels/{channel_id}/messages/{message_id}"


async def test_cancelled_from_outside(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, ConfirmSession, alice)
    await manager.end(session, reason="superseded")
    end = await wait_ended(session)
    assert (end.code, end.result, end.reason) == (EndCode.CANCELLED, None, "superseded")
    assert message.content.endswith("*This question was closed.*")


@pytest.mark.redis
async def test_survives_a_restart_on_redis(
    offline: OfflineDiscord,
    redis_server: RedisServer,
    redis_client: Redis,
    clock: ManualClock,
) -> None:
    alice = offline.add_member("alice")
    async with processes(offline, redis_server, clock, [ConfirmSession]) as spawn:
        first = await spawn(first=True)
        session, message = await start(
            offline,
            first.manager,
            lambda i: ConfirmSession(i, "Ship it?", confirm_label="Ship"),
            alice,
        )
        await first.manager.aclose()
        second = await spawn()
        ends = collect_ends(second.manager)
        await offline.click(alice, message, label="Ship", client=second.client)
        end = await next_end(ends)
        assert (end.session_id, end.code, end.result) == (session.id, EndCode.ENDED, True)
        assert message.content == "Ship it?\n\n*Confirmed.*"
        assert buttons(message) == [("Ship", True), ("No", True)]
        assert await second.manager.active() == {}
        assert (await wait_ended(session)).code is EndCode.SHUTDOWN  # the first process's copy
