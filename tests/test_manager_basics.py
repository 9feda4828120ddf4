from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any, TypeVar

import discord
import pytest

from nyx_sessions import AbstractSession, EndCode, SessionEvent, SessionManager, SessionStateError
from nyx_sessions.testing import ManualClock, OfflineDiscord, OfflineUser
from tests.sessions import Counter, Probe

S = TypeVar("S", bound=AbstractSession[Any])


async def start(
    offline: OfflineDiscord, manager: SessionManager, cls: type[S], user: OfflineUser
) -> S:
    command = await offline.slash_command(user, "start", wait=False)
    session = cls(command.interaction)
    assert await manager.start(session)
    return session


async def test_contract_example(offline: OfflineDiscord, clock: ManualClock) -> None:
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, clock=clock)
    command = await offline.slash_command(alice, "counter", wait=False)

    session = Counter(command.interaction)
    started = await manager.start(session)
    assert started is True
    await command.wait_answered()
    message = command.message
    assert message is not None and message.content == "0"
    assert [b["label"] for b in message.buttons] == ["+1", "Done"]

    for expected in ("1", "2", "3"):
        click = await offline.click(alice, message, label="+1")
        assert click.response is not None
        assert click.response.type is discord.InteractionResponseType.message_update
        assert message.content == expected
    await offline.click(alice, message, label="Done")
    end = await session.end_promise
    assert (end.code, end.result, end.reason) == (EndCode.ENDED, 3, None)
    assert message.content == "done"
    assert manager.get(session.id) is None
    await manager.aclose()


async def test_session_ids_are_random_compact_and_unguessable(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    command = await offline.slash_command(alice, "x", wait=False)
    ids = {Counter(command.interaction).id for _ in range(2000)}
    assert len(ids) == 2000
    for session_id in list(ids)[:50]:
        assert len(session_id) == 16  # 96 random bits, URL-safe base64
    with pytest.raises(ValueError, match="invalid session id"):
        Counter(command.interaction, session_id="has:colon")
    assert Counter(command.interaction, session_id="fixed-id").id == "fixed-id"


async def test_custom_id_is_a_fresh_builder_on_every_access(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Counter, alice)
    first = session.custom_id.push("a").build()
    second = session.custom_id.push("b").build()
    assert first == f"nyx:{session.id}:a"
    assert second == f"nyx:{session.id}:b"


async def test_concurrent_clicks_never_overlap_and_lose_nothing(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Probe, alice)
    message = offline.messages[-1]
    clicks = [offline.click(alice, message, label="go", wait=False) for _ in range(20)]
    results = await asyncio.gather(*clicks)
    for result in results:
        await result.wait_answered()
    assert session.data["overlaps"] == 0
    seen = session.data["seen"]
    assert len(seen) == 20
    # Arrival order is kept.
    assert [int(item.rsplit(":", 1)[1]) for item in seen] == [r.id for r in results]
    assert all(r.response is not None for r in results)


async def test_a_session_that_refreshes_outlives_one_that_does_not(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")

    class Refreshing(Probe):
        ttl = 10
        refresh = True

    class Timed(Probe):
        ttl = 10
        refresh = False

    refreshing = await start(offline, manager, Refreshing, alice)
    refreshing_message = offline.messages[-1]
    timed = await start(offline, manager, Timed, alice)
    timed_message = offline.messages[-1]

    await clock.advance(6)
    await offline.click(alice, refreshing_message, label="go")
    await offline.click(alice, timed_message, label="go")
    await clock.advance(6)  # 12 s since start: the timed race is over, the other one refreshed
    end = await asyncio.wait_for(timed.end_promise, 1)
    assert end.code is EndCode.EXPIRED
    assert end.result == timed.data["seen"]
    assert manager.get(refreshing.id) == refreshing
    await clock.advance(5)  # 11 s since its refresh
    assert (await asyncio.wait_for(refreshing.end_promise, 1)).code is EndCode.EXPIRED


async def test_max_lifetime_caps_refreshes(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")

    class Capped(Probe):
        ttl = 10
        max_lifetime = 25

    session = await start(offline, manager, Capped, alice)
    message = offline.messages[-1]
    for _ in range(4):
        await clock.advance(6)
        await offline.click(alice, message, label="go")
    assert manager.get(session.id) is session  # 24 s: still inside the cap
    await clock.advance(2)
    assert (await asyncio.wait_for(session.end_promise, 1)).code is EndCode.EXPIRED


async def test_stop_from_outside_waits_for_the_end(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Probe, alice)
    await session.stop(result=["outside"], reason="test")
    assert session.end_promise.done()
    end = session.end_promise.result()
    assert (end.code, end.result, end.reason) == (EndCode.ENDED, ["outside"], "test")
    assert await manager.end(session) is False  # ended already


async def test_stop_inside_a_handler_does_not_deadlock(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Probe, alice)
    message = offline.messages[-1]
    click = await offline.click(alice, message, label="stop")
    end = await asyncio.wait_for(session.end_promise, 1)
    assert end.code is EndCode.ENDED and end.reason == "stop button"
    # The handler returned without answering: the manager acknowledged it.
    assert click.response is not None
    assert click.response.type is discord.InteractionResponseType.deferred_message_update


async def test_end_from_outside_cancels(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Probe, alice)
    assert await manager.end(session.id, reason="admin") is True
    end = await session.end_promise
    assert (end.code, end.reason) == (EndCode.CANCELLED, "admin")


async def test_end_waits_for_an_update_in_progress(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    gate = asyncio.Event()

    class Gated(Probe):
        pass

    Gated.gate = gate
    session = await start(offline, manager, Gated, alice)
    click = await offline.click(alice, offline.messages[-1], label="go", wait=False)
    await asyncio.sleep(0.01)
    ending = asyncio.ensure_future(manager.end(session))
    await asyncio.sleep(0.01)
    assert not ending.done()
    gate.set()
    assert await ending is True
    await click.wait_answered()
    assert len(session.data["seen"]) == 1


async def test_expiry_never_runs_in_the_middle_of_an_update(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    gate = asyncio.Event()

    class Gated(Probe):
        ttl = 10

    Gated.gate = gate
    session = await start(offline, manager, Gated, alice)
    click = await offline.click(alice, offline.messages[-1], label="go", wait=False)
    await asyncio.sleep(0.01)
    await clock.advance(11)  # past the deadline while the handler runs
    assert not session.end_promise.done()
    gate.set()
    await click.wait_answered()
    await asyncio.sleep(0.01)
    # The handler returned True: its refresh won; the session lives on.
    assert not session.end_promise.done()
    await clock.advance(11)
    assert (await asyncio.wait_for(session.end_promise, 1)).code is EndCode.EXPIRED


async def test_clicks_on_unknown_ended_or_expired_sessions_are_answered(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    missing: list[str] = []

    async def on_missing(session_id: str, interaction: discord.Interaction[Any]) -> None:
        missing.append(session_id)

    manager.add_listener(SessionEvent.MISSING, on_missing)

    class Short(Probe):
        ttl = 5

    session = await start(offline, manager, Short, alice)
    message = offline.messages[-1]
    await clock.advance(6)
    click = await offline.click(alice, message, label="go")
    assert click.response is not None
    assert click.ephemeral
    assert click.message is not None and "expired" in click.message.content
    await asyncio.sleep(0.01)
    assert missing == [session.id]
    assert (await session.end_promise).code is EndCode.EXPIRED


async def test_missing_text_is_configurable(offline: OfflineDiscord, clock: ManualClock) -> None:
    from nyx_sessions import Responder

    alice = offline.add_member("alice")
    manager = SessionManager(
        offline.client, clock=clock, responder=Responder(missing="Gone, sorry.")
    )
    session = await start(offline, manager, Probe, alice)
    message = offline.messages[-1]
    await manager.end(session)
    click = await offline.click(alice, message, label="go")
    assert click.message is not None and click.message.content == "Gone, sorry."
    await manager.aclose()


async def test_filter_rejection_is_answered_without_handler_or_refresh(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    from nyx_sessions import OwnerOnly

    alice = offline.add_member("alice")
    mallory = offline.add_member("mallory")
    filtered: list[int] = []

    async def on_filtered(session: Any, interaction: discord.Interaction[Any]) -> None:
        filtered.append(interaction.user.id)

    manager.add_listener("filtered", on_filtered)

    class Owned(Probe):
        ttl = 10
        update_filter = OwnerOnly()

    session = await start(offline, manager, Owned, alice)
    message = offline.messages[-1]
    await clock.advance(6)
    click = await offline.click(mallory, message, label="go")
    assert click.ephemeral
    assert click.message is not None
    assert click.message.content == "Only the person who started this can use it."
    assert session.data["seen"] == []
    await asyncio.sleep(0.01)
    assert filtered == [mallory.id]
    await clock.advance(5)  # 11 s: the refused click did not refresh the TTL
    assert (await asyncio.wait_for(session.end_promise, 1)).code is EndCode.EXPIRED


async def test_handler_exception_is_logged_reported_and_answered(
    offline: OfflineDiscord, manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    alice = offline.add_member("alice")
    errors: list[BaseException] = []

    async def on_error(session: Any, interaction: Any, error: BaseException) -> None:
        errors.append(error)

    manager.add_listener(SessionEvent.ERROR, on_error)
    session = await start(offline, manager, Probe, alice)
    caplog.set_level(logging.ERROR)
    click = await offline.click(alice, offline.messages[-1], label="boom")
    assert click.ephemeral
    assert click.message is not None and "Something went wrong" in click.message.content
    await asyncio.sleep(0.01)
    assert [str(e) for e in errors] == ["handler exploded"]
    nyx_records = [r for r in caplog.records if r.name == "nyx_sessions"]
    assert any("failed to handle" in r.getMessage() for r in nyx_records)
    assert not [r for r in caplog.records if r.name.startswith("discord")]
    # The session survives its handler's failure.
    await offline.click(alice, offline.messages[-2], label="go")
    assert len(session.data["seen"]) == 2


async def test_a_silent_handler_is_acknowledged(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")

    class Silent(Probe):
        answer = False

    await start(offline, manager, Silent, alice)
    click = await offline.click(alice, offline.messages[-1], label="go")
    assert click.response is not None
    assert click.response.type is discord.InteractionResponseType.deferred_message_update


async def test_a_slow_handler_is_deferred_in_time(offline: OfflineDiscord) -> None:
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, defer_after=0.05)
    gate = asyncio.Event()

    class Slow(AbstractSessionWithEdit):
        pass

    Slow.gate = gate
    session = Slow((await offline.slash_command(alice, "s", wait=False)).interaction)
    await manager.start(session)
    click = await offline.click(alice, offline.messages[-1], label="go", wait=False)
    response = await click.wait_answered(1)
    assert response.type is discord.InteractionResponseType.deferred_message_update
    gate.set()
    await offline.wait_for_request(
        lambda r: r.method == "PATCH" and "@original" in r.path, timeout=2
    )
    assert offline.messages[-1].content == "late but fine"
    await manager.aclose()


async def test_a_served_click_is_not_held_for_the_deferral_window(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    # The deferral watches every click for defer_after seconds; once a click has been
    # served it lets go of it at once, so busy bots do not keep seconds of interactions
    # (and the objects discord.py hangs on them) alive for the collector.
    alice = offline.add_member("alice")
    await start(offline, manager, Probe, alice)
    clicks = [await offline.click(alice, offline.messages[-1], label="go") for _ in range(3)]
    for click in clicks:
        assert click.answered
        # Held by the offline kit's record of it and its own response object only.
        holders = {type(r).__name__ for r in gc.get_referrers(click.interaction)}
        assert holders == {"InteractionResult", "InteractionResponse"}, holders


class AbstractSessionWithEdit(Probe):
    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.gate is not None
        await self.gate.wait()
        await interaction.edit_original_response(content="late but fine")
        return True


async def test_start_filter_rejection(offline: OfflineDiscord, manager: SessionManager) -> None:
    from nyx_sessions import UserIn

    alice = offline.add_member("alice")
    bob = offline.add_member("bob")

    class AliceOnly(Probe):
        start_filter = UserIn(alice.id, message="Only Alice may start this.")

    command = await offline.slash_command(bob, "start", wait=False)
    session = AliceOnly(command.interaction)
    assert await manager.start(session) is False
    response = await command.wait_answered()
    assert response is not None and command.ephemeral
    assert command.message is not None and command.message.content == "Only Alice may start this."
    end = await session.end_promise
    assert end.code is EndCode.REJECTED
    assert manager.get(session.id) is None


async def test_start_that_raises_ends_with_error(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")

    class Broken(Probe):
        async def start(self) -> None:
            raise ValueError("no start")

    command = await offline.slash_command(alice, "start", wait=False)
    session = Broken(command.interaction)
    assert await manager.start(session) is False
    assert (await session.end_promise).code is EndCode.ERROR
    await command.wait_answered()
    assert command.ephemeral


async def test_selects_and_modals_reach_their_handlers(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")

    class Menus(Probe):
        async def start(self) -> None:
            self.data["seen"] = []
            view = discord.ui.View(timeout=None)
            view.add_item(
                discord.ui.Select(
                    custom_id=self.custom_id.push("s").build(),
                    options=[discord.SelectOption(label="A", value="a")],
                )
            )
            view.add_item(discord.ui.UserSelect(custom_id=self.custom_id.push("u").build()))
            view.add_item(discord.ui.RoleSelect(custom_id=self.custom_id.push("r").build()))
            view.add_item(discord.ui.ChannelSelect(custom_id=self.custom_id.push("c").build()))
            view.add_item(discord.ui.MentionableSelect(custom_id=self.custom_id.push("m").build()))
            assert self.start_interaction is not None
            await self.start_interaction.response.send_message("menus", view=view)

    session = await start(offline, manager, Menus, alice)
    message = offline.messages[-1]
    role = offline.add_role("mods")
    await offline.select(
        alice, message, values=["a"], custom_id=session.custom_id.push("s").build()
    )
    await offline.select(
        alice, message, values=[alice], custom_id=session.custom_id.push("u").build()
    )
    await offline.select(
        alice, message, values=[role], custom_id=session.custom_id.push("r").build()
    )
    await offline.select(
        alice, message, values=[offline.channel], custom_id=session.custom_id.push("c").build()
    )
    await offline.select(
        alice, message, values=[role], custom_id=session.custom_id.push("m").build()
    )
    modal = await offline.submit_modal(
        alice, session.custom_id.push("modal").build(), values={"field": "text"}
    )
    assert modal.response is not None
    kinds = [item.split(":")[1] for item in session.data["seen"]]
    assert kinds == ["3", "5", "6", "8", "7", str(modal.id)]


async def test_foreign_views_and_on_interaction_keep_working(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    calls: list[str] = []

    class Persistent(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="foreign", custom_id="foreign:button")
        async def foreign(
            self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]
        ) -> None:
            calls.append("view")
            await interaction.response.send_message("from the view", ephemeral=True)

    offline.client.add_view(Persistent())

    @offline.client.event
    async def on_interaction(interaction: discord.Interaction[Any]) -> None:
        calls.append("on_interaction")

    channel_message = await offline.client.get_partial_messageable(offline.channel.id).send(
        "persistent", view=Persistent()
    )
    message = offline.message(channel_message.id)
    click = await offline.click(alice, message, label="foreign")
    assert click.message is not None and click.message.content == "from the view"
    # A session still works next to it, and on_interaction sees both.
    await start(offline, manager, Probe, alice)
    await offline.click(alice, offline.messages[-1], label="go")
    await asyncio.sleep(0.01)
    assert calls.count("view") == 1
    # The foreign click, the slash command and the session's click.
    assert calls.count("on_interaction") == 3


async def test_no_session_view_stays_in_discord_view_store(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    view_store: Any = offline.client._connection._view_store
    before = (len(view_store._views), len(view_store._synced_message_views))
    sessions = [await start(offline, manager, Counter, alice) for _ in range(1000)]
    for session in sessions:
        await manager.end(session)
    assert (len(view_store._views), len(view_store._synced_message_views)) == before
    assert len(view_store._modals) == 0
    assert manager._live == {}
    assert len(manager._scheduler) == 0
    assert await manager.active() == {}


async def test_message_id_is_captured_when_the_view_is_sent(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Counter, alice)
    assert session.message_id == offline.messages[-1].id
    assert session.message is not None and session.message.id == session.message_id


async def test_update_returns_whether_the_interaction_was_ours(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Probe, alice)
    message = offline.messages[-1]
    manager.detach()  # feed by hand from here on
    ours = await offline.click(alice, message, label="go", wait=False)
    assert await manager.update(ours.interaction) is True
    assert len(session.data["seen"]) == 1
    payload = offline.make_interaction_payload(
        alice, type=3, data={"custom_id": "other:thing", "component_type": 2}
    )
    foreign = discord.Interaction(data=payload, state=offline.client._connection)  # type: ignore[arg-type]
    assert await manager.update(foreign) is False


async def test_events_reach_listeners_and_the_client(
    offline: OfflineDiscord, manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    alice = offline.add_member("alice")
    seen: list[str] = []

    async def on_start(session: Any) -> None:
        seen.append("start")

    async def on_update(session: Any, interaction: Any) -> None:
        seen.append("update")

    async def on_end(session: Any, end: Any) -> None:
        seen.append(f"end:{end.code.value}")

    async def failing(session: Any) -> None:
        raise RuntimeError("listener broke")

    @offline.client.event
    async def on_session_start(session: Any) -> None:
        seen.append("client:start")

    manager.add_listener(SessionEvent.START, on_start)
    manager.add_listener(SessionEvent.START, failing)
    manager.add_listener(SessionEvent.UPDATE, on_update)
    manager.add_listener(SessionEvent.END, on_end)
    session = await start(offline, manager, Probe, alice)
    await offline.click(alice, offline.messages[-1], label="go")
    await manager.end(session)
    await asyncio.sleep(0.01)
    assert sorted(seen) == sorted(["start", "client:start", "update", "end:cancelled"])
    assert "listener broke" in caplog.text
    manager.remove_listener(SessionEvent.START, on_start)
    not_a_coroutine: Any = print
    with pytest.raises(TypeError, match="must be a coroutine function"):
        manager.add_listener(SessionEvent.START, not_a_coroutine)


async def test_aclose_ends_memory_sessions_with_shutdown_and_detaches(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    async with SessionManager(offline.client, clock=clock) as manager:
        session = await start(offline, manager, Probe, alice)
    assert (await session.end_promise).code is EndCode.SHUTDOWN
    assert manager.closed
    await manager.aclose()  # idempotent
    from nyx_sessions import ManagerClosedError

    with pytest.raises(ManagerClosedError):
        await manager.start(
            Probe((await offline.slash_command(alice, "x", wait=False)).interaction)
        )
    # Detached: a second manager can attach to the same client.
    second = SessionManager(offline.client, clock=clock)
    await second.aclose()


async def test_active_counts_live_sessions_per_type(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    await start(offline, manager, Probe, alice)
    await start(offline, manager, Probe, alice)
    await start(offline, manager, Counter, alice)
    assert await manager.active() == {Probe.session_type: 2, Counter.session_type: 1}


async def test_queued_clicks_behind_a_slow_handler_are_deferred_in_time(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    gate = asyncio.Event()

    class Gated(Probe):
        pass

    Gated.gate = gate
    session = await start(offline, manager, Gated, alice)
    message = offline.messages[-1]
    first = await offline.click(alice, message, label="go", wait=False)
    second = await offline.click(alice, message, label="go", wait=False)
    await asyncio.sleep(0.01)
    assert first.response is None and second.response is None
    await clock.advance(2.6)  # past the manager's defer_after (2.5 s)
    for click in (first, second):
        response = await click.wait_answered(1)
        assert response.type is discord.InteractionResponseType.deferred_message_update
    gate.set()
    await offline.wait_for_request(
        lambda r: r.method == "PATCH" and second.token in r.path, timeout=2
    )
    assert len(session.data["seen"]) == 2
    assert session.data["overlaps"] == 0
    assert message.content == "2"


async def test_discord_view_store_keeps_plain_views_but_not_session_views(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    """The measurement behind "no session view left in discord.py's view store"."""
    alice = offline.add_member("alice")
    view_store: Any = offline.client._connection._view_store
    channel = offline.client.get_partial_messageable(offline.channel.id)
    before = len(view_store._synced_message_views)
    for index in range(50):
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="x", custom_id=f"plain:{index}"))
        await channel.send("plain", view=view)
    # discord.py keeps every View(timeout=None) it sent, for ever.
    assert len(view_store._synced_message_views) == before + 50
    for _ in range(50):
        session = await start(offline, manager, Counter, alice)
        await manager.end(session)
    assert len(view_store._synced_message_views) == before + 50


async def test_an_interaction_delivered_twice_is_served_once(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session = await start(offline, manager, Probe, alice)
    click = await offline.click(alice, offline.messages[-1], label="go")
    duplicate = discord.Interaction(data=click.payload, state=offline.client._connection)  # type: ignore[arg-type]
    assert await manager.update(duplicate) is True
    assert len(session.data["seen"]) == 1
    callbacks = [r for r in offline.requests if r.path.endswith("/callback")]
    assert len([r for r in callbacks if str(click.id) in r.path]) == 1


async def test_caps_on_live_sessions_per_user_and_in_total(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    alice, bob, carol = (offline.add_member(name) for name in ("alice", "bob", "carol"))
    manager = SessionManager(offline.client, clock=clock, max_sessions=3, max_sessions_per_user=2)
    try:
        first = await start(offline, manager, Probe, alice)
        await start(offline, manager, Probe, alice)
        command = await offline.slash_command(alice, "probe", wait=False)
        refused = Probe(command.interaction)
        assert await manager.start(refused) is False
        end = await refused.end_promise
        assert end.code is EndCode.REJECTED
        await command.wait_answered()
        assert command.ephemeral and command.message is not None
        assert command.message.content == (
            "You already have 2 sessions open. Finish one before starting another."
        )
        await start(offline, manager, Probe, bob)
        command = await offline.slash_command(carol, "probe", wait=False)
        assert await manager.start(Probe(command.interaction)) is False  # 3 in all
        await command.wait_answered()
        assert command.message is not None and "Too many sessions" in command.message.content
        # Ending one frees a place; nothing is kept per user once they have none.
        await manager.end(first)
        await start(offline, manager, Probe, carol)
        assert manager.limits.count() == 3 and manager.limits.count(alice.id) == 1
    finally:
        await manager.aclose()
    assert manager.limits.count() == 0
    assert manager.limits._per_user == {}


async def test_clicks_queued_behind_the_end_are_told_it_expired(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    gate = asyncio.Event()

    class Gated(Probe):
        pass

    Gated.gate = gate
    session = await start(offline, manager, Gated, alice)
    message = offline.messages[-1]
    stop = await offline.click(alice, message, label="stop", wait=False)
    late = [await offline.click(alice, message, label="go", wait=False) for _ in range(3)]
    gate.set()
    await stop.wait_answered()
    for click in late:
        await click.wait_answered(2)
        assert click.ephemeral
        assert click.message is not None and "expired" in click.message.content
    assert (await session.end_promise).code is EndCode.ENDED
    assert session.data["seen"][0].startswith("stop:")
    assert len(session.data["seen"]) == 1


async def test_start_interactions_can_be_dropped_after_start(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, clock=clock, keep_start_interaction=False)
    try:
        session = await start(offline, manager, Counter, alice)
        with pytest.raises(SessionStateError, match="has returned from start"):
            _ = session.start_interaction
        message = offline.messages[-1]
        await offline.click(alice, message, label="+1")
        assert message.content == "1"
        assert session.message is not None
        await session.message.edit(content="edited by id")
        assert message.content == "edited by id"
    finally:
        await manager.aclose()


async def test_aclose_waits_for_running_updates_then_answers_what_is_left(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, clock=clock, close_timeout=0.2)
    gate = asyncio.Event()

    class Gated(Probe):
        pass

    Gated.gate = gate
    session = await start(offline, manager, Gated, alice)
    message = offline.messages[-1]
    running = await offline.click(alice, message, label="go", wait=False)
    queued = [await offline.click(alice, message, label="go", wait=False) for _ in range(2)]
    await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(manager.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()  # waiting for the running update
    gate.set()
    await closing
    for click in (running, *queued):
        await click.wait_answered(1)  # nothing is left unanswered
    assert (await session.end_promise).code is EndCode.SHUTDOWN


async def test_aclose_gives_up_on_an_update_that_does_not_finish(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, clock=clock, close_timeout=0.1)

    class Stuck(Probe):
        pass

    Stuck.gate = asyncio.Event()  # never set
    await start(offline, manager, Stuck, alice)
    message = offline.messages[-1]
    stuck = await offline.click(alice, message, label="go", wait=False)
    queued = await offline.click(alice, message, label="go", wait=False)
    await asyncio.sleep(0.01)
    await asyncio.wait_for(manager.aclose(), 2)
    for click in (stuck, queued):
        await click.wait_answered(1)
        assert click.ephemeral
        assert click.message is not None and "try again" in click.message.content


async def test_aclose_right_after_clicks_arrive_answers_every_one(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    """Clicks still queued for their first step when the manager closes are answered too."""
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, clock=clock, close_timeout=0.05)

    class Stuck(Probe):
        pass

    Stuck.gate = asyncio.Event()  # never set: every handler that runs waits for ever
    messages = []
    for _ in range(3):
        await start(offline, manager, Stuck, alice)
        messages.append(offline.messages[-1])
    # Parsed in one loop turn, then the manager closes before any of them ran.
    clicks = [await offline.click(alice, m, label="go", wait=False) for m in messages]
    await asyncio.wait_for(manager.aclose(), 2)
    for click in clicks:
        await click.wait_answered(1)
        assert click.ephemeral
        assert click.message is not None and "try again" in click.message.content
    assert not manager._queues.abandoned and not manager._tasks


async def test_aclose_answers_clicks_whose_task_was_cancelled_before_they_ran(
    offline: OfflineDiscord, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    manager = SessionManager(offline.client, clock=clock, close_timeout=0.05)
    await start(offline, manager, Probe, alice)
    message = offline.messages[-1]
    click = await offline.click(alice, message, label="go", wait=False)
    (task,) = manager._tasks  # the task that would serve the click
    task.cancel()  # as aclose cancels work that outlives close_timeout
    await asyncio.gather(task, return_exceptions=True)
    assert not click.answered
    await asyncio.wait_for(manager.aclose(), 2)
    await click.wait_answered(1)
    assert click.ephemeral
    assert click.message is not None and "try again" in click.message.content
    assert not manager._queues.abandoned
