"""Sessions that a persistent store could not restore are refused before they start."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from nyx_sessions import (
    AbstractSession,
    NyxSessionError,
    SessionManager,
    SessionTypeNotRegisteredError,
    StateEncodeError,
)
from nyx_sessions.codecs.state import StateCodec
from nyx_sessions.registry import SessionRegistry
from nyx_sessions.testing import OfflineDiscord


class Note(AbstractSession[None]):
    async def start(self) -> None:
        await self.reply(self.start_interaction, "note")


class Impostor(AbstractSession[None]):
    session_type = Note.session_type

    async def start(self) -> None:
        await self.reply(self.start_interaction, "impostor")


async def note(offline: OfflineDiscord, cls: type[AbstractSession[Any]]) -> AbstractSession[Any]:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "note", wait=False)
    return cls(command.interaction)


async def test_an_unregistered_class_is_named_with_the_fix(offline: OfflineDiscord) -> None:
    session = await note(offline, Note)
    with pytest.raises(SessionTypeNotRegisteredError) as caught:
        SessionRegistry().check_startable(session)
    assert isinstance(caught.value, NyxSessionError)
    message = str(caught.value)
    assert "test_fail_fast.Note cannot be restored" in message
    assert "SessionManager.register(Note)" in message
    SessionRegistry([Note]).check_startable(session)


async def test_a_class_sharing_another_ones_session_type_is_refused(
    offline: OfflineDiscord,
) -> None:
    session = await note(offline, Impostor)
    with pytest.raises(SessionTypeNotRegisteredError, match="names Note"):
        SessionRegistry([Note]).check_startable(session)


async def test_data_the_codec_cannot_encode_is_refused(offline: OfflineDiscord) -> None:
    session = await note(offline, Note)
    session.data["client"] = discord.Object(1)
    with pytest.raises(StateEncodeError, match="its data cannot be stored"):
        SessionRegistry([Note]).check_startable(session, StateCodec())
    SessionRegistry([Note]).check_startable(session)  # the class alone is fine


async def test_a_memory_manager_starts_unregistered_classes(offline: OfflineDiscord) -> None:
    async with SessionManager(offline.client) as manager:
        session = await note(offline, Note)
        assert await manager.start(session)


async def test_manager_start_refuses_before_anything_is_sent(
    offline_discord: OfflineDiscord, redis_url: str
) -> None:
    from nyx_sessions.stores.redis import RedisStore

    offline = offline_discord
    store = RedisStore.from_url(redis_url)
    manager = SessionManager(offline.client, store=store)
    try:
        alice = offline.add_member("alice")
        command = await offline.slash_command(alice, "note", wait=False)
        session = Note(command.interaction)
        sent_before = len(offline.requests)
        with pytest.raises(SessionTypeNotRegisteredError, match=r"register\(Note\)"):
            await manager.start(session)
        assert offline.requests[sent_before:] == []  # Discord heard nothing
        assert not command.answered
        assert await manager.active() == {}

        manager.register(Note)  # the fix the error names
        assert await manager.start(session)
        assert (await command.wait_message()).content == "note"
    finally:
        await manager.aclose()
        await store.aclose()
