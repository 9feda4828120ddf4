"""Answered exactly once near the deferral: a handler's answer in flight, the manager's own.

discord.py marks an interaction answered only once the callback request has returned.
A deferral that looked only at that would post a second answer while the first is on
its way; so would the manager's own replies (failed, refused) racing the deferral.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest

from nyx_sessions import AbstractSession, SessionManager
from nyx_sessions.filters import AbstractSessionUpdateFilter
from nyx_sessions.testing import OfflineDiscord

_SLOW_HANDLER = 0.25  # the handler answers 0.05 s before the deferral is due
_DEFER_AFTER = 0.3
_NETWORK = 0.15  # the callback's reply arrives after the deferral is due


class SlowAnswer(AbstractSession[None]):
    ttl = 60
    fail = False

    async def start(self) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="go", custom_id=self.custom_id.push("go").build()))
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("ready", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        await asyncio.sleep(_SLOW_HANDLER)
        if self.fail:
            raise RuntimeError("the handler failed")
        await interaction.response.edit_message(content="answered by the handler")
        return True


class SlowRefusal(AbstractSessionUpdateFilter):
    async def check(self, session: Any, interaction: discord.Interaction[Any]) -> bool:
        await asyncio.sleep(_SLOW_HANDLER)
        return False


async def _click_slowly(
    session_type: type[SlowAnswer], posts: Any, *, fail: bool = False, refuse: bool = False
) -> tuple[int, str | None]:
    async with OfflineDiscord() as offline:
        manager = SessionManager(offline.client, defer_after=_DEFER_AFTER)
        try:
            alice = offline.add_member("alice")
            command = await offline.slash_command(alice, "go", wait=False)
            session = session_type(command.interaction)
            session.fail = fail
            if refuse:
                session.update_filter = SlowRefusal()
            assert await manager.start(session)
            await command.wait_answered()
            assert command.message is not None
            offline.server.interactions.callback_delay = _NETWORK
            click = await offline.click(alice, command.message, label="go", wait=False)
            await asyncio.sleep(_DEFER_AFTER + 2 * _NETWORK + 0.2)  # past every deferral
            await click.wait_answered(1)
            answer = click.message.content if click.message is not None else None
            return posts[click.interaction.id], answer
        finally:
            await manager.aclose()


async def test_a_handler_answer_in_flight_is_not_answered_again_by_the_deferral(
    answered_at_most_once: Any,
) -> None:
    posts, content = await _click_slowly(SlowAnswer, answered_at_most_once)
    assert posts == 1
    assert content == "answered by the handler"


@pytest.mark.parametrize("case", ["failed", "refused"])
async def test_a_manager_reply_in_flight_is_not_answered_again_by_the_deferral(
    answered_at_most_once: Any, case: str
) -> None:
    posts, content = await _click_slowly(
        SlowAnswer, answered_at_most_once, fail=case == "failed", refuse=case == "refused"
    )
    assert posts == 1
    assert content is not None
    assert ("went wrong" in content) if case == "failed" else ("can't use" in content)
