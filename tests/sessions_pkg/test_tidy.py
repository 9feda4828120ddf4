"""What every ready-made session does with its message when it ends without a handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord
import pytest

from nyx_sessions import AbstractSession, EndCode, SessionEvent, SessionManager
from nyx_sessions.sessions import ChoiceSession, ConfirmSession, PaginationSession
from nyx_sessions.testing import ManualClock, OfflineDiscord, OfflineMessage

from .helpers import start, wait_ended
from .test_form import SignupForm

Factory = Callable[[discord.Interaction[Any]], AbstractSession[Any]]

SESSIONS: dict[str, tuple[Factory, Any]] = {
    "pagination": (lambda i: PaginationSession(i, ["a", "b"]), 0),
    "confirm": (ConfirmSession, None),
    "form": (SignupForm, None),
    "choice": (lambda i: ChoiceSession(i, "?", ["x", "y"]), {"x": 0, "y": 0}),
}


def usable(message: OfflineMessage) -> list[str]:
    """The custom ids a user could still click or pick."""
    return [
        c["custom_id"]
        for c in (*message.buttons, *message.selects)
        if "custom_id" in c and not c.get("disabled")
    ]


@pytest.fixture(params=sorted(SESSIONS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_expiry_leaves_nothing_to_click(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock, kind: str
) -> None:
    factory, result = SESSIONS[kind]
    session, message = await start(offline, manager, factory, offline.add_member("alice"))
    assert usable(message)
    await clock.advance(24 * 3600)  # past every TTL and every interaction token
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.EXPIRED, result)
    assert usable(message) == []
    edit = offline.requests[-1]
    assert (edit.method, edit.route) == ("PATCH", "/channels/{channel_id}/messages/{message_id}")


async def test_shutdown_leaves_nothing_to_click(
    offline: OfflineDiscord, clock: ManualClock, kind: str
) -> None:
    manager = SessionManager(offline.client, clock=clock)
    factory, _ = SESSIONS[kind]
    session, message = await start(offline, manager, factory, offline.add_member("alice"))
    await manager.aclose()
    assert (await wait_ended(session)).code is EndCode.SHUTDOWN
    assert usable(message) == []


async def test_a_deleted_message_is_logged_not_raised(
    offline: OfflineDiscord,
    manager: SessionManager,
    clock: ManualClock,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[Any] = []

    async def on_error(*args: Any) -> None:
        errors.append(args)

    manager.add_listener(SessionEvent.ERROR, on_error)
    factory, _ = SESSIONS[kind]
    session, message = await start(offline, manager, factory, offline.add_member("alice"))
    message.deleted = True
    with caplog.at_level("INFO", logger="nyx_sessions"):
        await manager.end(session)
    assert (await wait_ended(session)).code is EndCode.CANCELLED
    assert errors == []
    assert "is gone; nothing to tidy" in caplog.text
