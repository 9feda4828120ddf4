"""ConversationForm: FormSession's form as a conversation, in memory and across restarts."""

from __future__ import annotations

from typing import Any

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.sessions import ChoiceField, ConversationForm, TextField
from nyx_sessions.testing import ManualClock, OfflineDiscord

from .conftest import Spawn
from .test_memory import callbacks
from .test_replay import idle


def digits(text: str) -> str | None:
    return None if text.isdigit() else "use digits only"


class Profile(ConversationForm):
    session_type = "tests.profile"
    title = "Profile"
    fields = (
        TextField("name", "Name", max_length=20),
        TextField("age", "Age", validate=digits, convert=int),
        ChoiceField("team", "Team", options=["red", "blue"]),
    )


async def test_the_form_reprompts_and_returns_its_values(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "profile", wait=False)
    session = Profile(command.interaction)
    assert await manager.start(session)
    message = offline.messages[-1]
    assert message.content.startswith("**Profile** \u00b7 step 1 of 2")
    opened = await offline.click(alice, message, label="Fill in")
    await offline.submit_modal(alice, opened, {"name": "Alice", "age": "old"})
    assert "\u26a0\ufe0f Age: use digits only" in message.content
    reopened = await offline.click(alice, message, label="Fill in")
    assert reopened.modal is not None
    shown = [row["components"][0] for row in reopened.modal["components"]]
    assert [field.get("value") for field in shown] == ["Alice", "old"]  # what was typed
    await offline.submit_modal(alice, reopened, {"name": "Alice", "age": "30"})
    assert "step 2 of 2" in message.content and "\u2705 Age: 30" in message.content
    await offline.select(alice, message, ["blue"])
    end = await session.end_promise
    assert (end.code, end.result) == (EndCode.ENDED, {"name": "Alice", "age": 30, "team": "blue"})
    assert message.content.endswith("*Done.*") and message.components == []


async def test_cancel_and_expiry_tidy_the_message(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "profile", wait=False)
    cancelled = Profile(command.interaction)
    assert await manager.start(cancelled)
    await offline.click(alice, offline.messages[-1], label="Cancel")
    assert (await cancelled.end_promise).result is None
    assert offline.messages[-1].content.endswith("*Cancelled.*")

    command = await offline.slash_command(alice, "profile", wait=False)
    expiring = Profile(command.interaction)
    assert await manager.start(expiring)
    await clock.advance(601)
    assert (await expiring.end_promise).code is EndCode.EXPIRED
    assert offline.messages[-1].content.endswith(f"*{Profile.expired_text}*")
    assert offline.messages[-1].components == []


async def test_the_form_goes_on_after_restarts(offline: OfflineDiscord, spawn: Spawn) -> None:
    alice = offline.add_member("alice")
    process = await spawn(first=True, sessions=[Profile])
    command = await offline.slash_command(alice, "profile", client=process.client, wait=False)
    session: Any = Profile(command.interaction)
    assert await process.manager.start(session)
    message = offline.messages[-1]
    await process.close()
    process = await spawn(sessions=[Profile])
    opened = await offline.click(alice, message, label="Fill in", client=process.client)
    await process.close()
    process = await spawn(sessions=[Profile])
    await offline.submit_modal(alice, opened, {"name": "Bo", "age": "9"}, client=process.client)
    await process.close()
    process = await spawn(sessions=[Profile])
    await offline.select(alice, message, ["red"], client=process.client)
    await idle(process)
    assert message.content.endswith("*Done.*")
    assert "\u2705 Name: Bo" in message.content and "\u2705 Team: red" in message.content
    assert set(callbacks(offline).values()) == {1}
    assert await process.manager.active() == {}
