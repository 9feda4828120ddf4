from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import pytest
from redis.asyncio import Redis

from nyx_sessions import EndCode, SessionManager
from nyx_sessions.sessions import ChoiceField, FormSession, TextField
from nyx_sessions.testing import InteractionResult, ManualClock, OfflineDiscord
from nyx_sessions.testing.components import walk_components
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


def whole_number(text: str) -> str | None:
    return None if text.isdigit() else "must be a whole number."


@dataclass
class Signup:
    name: str
    age: int
    bio: str | None
    team: str
    pets: list[str]


class SignupForm(FormSession[Signup]):
    session_type = "tests.signup"
    title = "Sign up"
    result_type = Signup
    fields = (
        TextField("name", "Name", max_length=20),
        TextField("age", "Age", validate=whole_number, convert=int),
        TextField("bio", "Bio", required=False, paragraph=True),
        ChoiceField("team", "Team", options=[("Red team", "red"), ("Blue team", "blue")]),
        ChoiceField("pets", "Pets", options=["cat", "dog", "fish"], min_values=0, max_values=3),
    )


class Feedback(FormSession[dict[str, Any]]):
    session_type = "tests.feedback"
    title = "Feedback"
    fields = (TextField("text", "Your feedback", min_length=5),)


def modal_defaults(opened: InteractionResult) -> dict[str, Any]:
    assert opened.modal is not None
    return {
        c["custom_id"]: c.get("value")
        for c in walk_components(opened.modal["components"])
        if c.get("type") == discord.ComponentType.text_input.value
    }


async def test_fill_in_with_a_mistake_then_choices(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, SignupForm, alice)
    assert message.content.startswith("**Sign up** \u00b7 step 1 of 3")
    assert [b["label"] for b in message.buttons] == ["Fill in", "Cancel"]

    opened = await offline.click(alice, message, label="Fill in")
    assert list(modal_defaults(opened)) == ["name", "age", "bio"]
    await offline.submit_modal(alice, opened, {"name": " Alice ", "age": "thirty"})
    assert "\u26a0\ufe0f Age: must be a whole number." in message.content
    assert "step 1 of 3" in message.content
    assert session.values == {}

    reopened = await offline.click(alice, message, label="Fill in")
    assert modal_defaults(reopened) == {"name": " Alice ", "age": "thirty", "bio": None}
    await offline.submit_modal(alice, reopened, {"name": "Alice", "age": "30", "bio": ""})
    assert "step 2 of 3" in message.content
    assert "\u26a0\ufe0f" not in message.content
    assert "\u2705 Age: 30" in message.content
    [team] = message.selects
    assert [(o["label"], o["value"]) for o in team["options"]] == [
        ("Red team", "red"),
        ("Blue team", "blue"),
    ]

    await offline.select(alice, message, ["red"])
    assert "step 3 of 3" in message.content
    await offline.select(alice, message, ["cat", "dog"])
    end = await wait_ended(session)
    assert end.code is EndCode.ENDED
    assert end.result == Signup(name="Alice", age=30, bio=None, team="red", pets=["cat", "dog"])
    assert message.components == []
    assert message.content.endswith("*Done.*")
    assert "\u2705 Pets: cat, dog" in message.content


async def test_length_limits_are_checked_again(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, Feedback, alice)
    opened = await offline.click(alice, message, label="Fill in")
    # The Discord client enforces min_length; a forged submit does not.
    await offline.submit_modal(alice, opened, {"text": "meh"})
    assert "Your feedback: at least 5 characters, please." in message.content
    opened = await offline.click(alice, message, label="Fill in")
    await offline.submit_modal(alice, opened, {"text": "   "})
    assert "Your feedback is required." in message.content
    opened = await offline.click(alice, message, label="Fill in")
    await offline.submit_modal(alice, opened, {"text": "Great bot"})
    assert (await wait_ended(session)).result == {"text": "Great bot"}


async def test_stale_and_forged_steps(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, SignupForm, alice)
    first = await offline.click(alice, message, label="Fill in")
    await offline.submit_modal(alice, first, {"name": "Al", "age": "7"})
    assert "step 2 of 3" in message.content

    # The first modal, submitted again: that step is done.
    again = await offline.submit_modal(alice, first, {"name": "Bo", "age": "9"})
    assert ephemeral_text(again) == "That step of the form is already done."
    assert session.values["name"] == "Al"
    stale_open = session.custom_id.push("open").push(0).build()
    assert ephemeral_text(await forge_click(offline, alice, message, stale_open)) == (
        "That step of the form is already done."
    )
    for custom_id in (session.custom_id.push("hack").build(), f"nyx:{session.id}:%"):
        result = await forge_click(offline, alice, message, custom_id)
        assert ephemeral_text(result) == "That button is no longer valid."

    # A value that is not an option re-prompts, with the error shown.
    select = discord.ComponentType.string_select.value
    pick = session.custom_id.push("pick").push(1).build()
    await forge_click(offline, alice, message, pick, component_type=select, values=["green"])
    assert "\u26a0\ufe0f Team: pick from the listed options." in message.content
    assert "team" not in session.values
    stale_pick = session.custom_id.push("pick").push(0).build()
    result = await forge_click(
        offline, alice, message, stale_pick, component_type=select, values=["red"]
    )
    assert ephemeral_text(result) == "That step of the form is already done."
    await offline.select(alice, message, ["blue"])
    assert session.values["team"] == "blue"


async def test_cancel(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    session, message = await start(offline, manager, SignupForm, alice)
    refused = await offline.click(bob, message, label="Cancel")
    assert ephemeral_text(refused) == "Only the person who started this can use it."
    await offline.click(alice, message, label="Cancel")
    end = await wait_ended(session)
    assert (end.code, end.result, end.reason) == (EndCode.ENDED, None, "cancelled")
    assert message.components == []
    assert message.content.endswith("*Cancelled.*")


async def test_expiry(offline: OfflineDiscord, manager: SessionManager, clock: ManualClock) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, SignupForm, alice)
    opened = await offline.click(alice, message, label="Fill in")
    await offline.submit_modal(alice, opened, {"name": "Al", "age": "7"})
    await clock.advance(601)
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.EXPIRED, None)
    assert message.components == []
    assert "\u2705 Name: Al" in message.content
    assert message.content.endswith("*This form ran out of time before it was finished.*")


async def test_fields_are_checked(offline: OfflineDiscord) -> None:
    command = await offline.slash_command(offline.add_member("alice"), "form", wait=False)

    class Empty(FormSession[dict[str, Any]]):
        pass

    class Twice(FormSession[dict[str, Any]]):
        fields = (TextField("a", "A"), TextField("a", "Again"))

    class Huge(FormSession[dict[str, Any]]):
        fields = (ChoiceField("c", "C", options=[str(n) for n in range(26)]),)

    for cls, match in ((Empty, "needs fields"), (Twice, "distinct"), (Huge, "1 to 25")):
        with pytest.raises(ValueError, match=match):
            cls(command.interaction)

    class Long(FormSession[dict[str, Any]]):
        fields = tuple(TextField(f"f{n}", f"F{n}") for n in range(7))

    assert [len(step) for step in Long.steps()] == [5, 2]
    assert [len(step) for step in SignupForm.steps()] == [3, 1, 1]


@pytest.mark.redis
async def test_survives_a_restart_on_redis(
    offline: OfflineDiscord,
    redis_server: RedisServer,
    redis_client: Redis,
    clock: ManualClock,
) -> None:
    alice = offline.add_member("alice")
    async with processes(offline, redis_server, clock, [SignupForm]) as spawn:
        first = await spawn(first=True)
        session, message = await start(offline, first.manager, SignupForm, alice)
        opened = await offline.click(alice, message, label="Fill in", client=first.client)
        await first.manager.aclose()

        second = await spawn()
        ends = collect_ends(second.manager)
        # The modal opened before the restart is answered by the new process; the
        # validator comes from the class, so it still applies.
        await offline.submit_modal(alice, opened, {"name": "Al", "age": "x"}, client=second.client)
        assert "Age: must be a whole number." in message.content
        opened = await offline.click(alice, message, label="Fill in", client=second.client)
        await offline.submit_modal(alice, opened, {"name": "Al", "age": "42"}, client=second.client)
        await offline.select(alice, message, ["blue"], client=second.client)
        await offline.select(alice, message, [], client=second.client)
        end = await next_end(ends)
        assert (end.session_id, end.code) == (session.id, EndCode.ENDED)
        assert end.result == Signup(name="Al", age=42, bio=None, team="blue", pets=[])
        assert message.components == []
