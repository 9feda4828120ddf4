from __future__ import annotations

import asyncio

import discord
import pytest
from redis.asyncio import Redis

from nyx_sessions import EndCode, SessionManager, SessionStateError
from nyx_sessions.sessions import Page, PageLike, PaginationSession, as_page
from nyx_sessions.testing import ManualClock, OfflineDiscord, OfflineMessage
from tests.stores.redis_server import RedisServer

from .helpers import ephemeral_text, forge_click, processes, start, wait_ended

PAGES = ["one", "two", "three"]


def labels(message: OfflineMessage) -> list[tuple[str, bool]]:
    return [(b["label"], bool(b.get("disabled"))) for b in message.buttons]


def go_id(session: PaginationSession, target: int | str, name: str = "next") -> str:
    return session.custom_id.push("go").push(target).push(name).build()


async def test_browse_with_buttons_select_and_jump_modal(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, lambda i: PaginationSession(i, PAGES), alice)
    assert message.content == "one"
    assert labels(message) == [
        ("\u00ab", True),
        ("\u2039", True),
        ("1 / 3", False),
        ("\u203a", False),
        ("\u00bb", False),
        ("Close", False),
    ]
    [select] = message.selects
    assert [o["value"] for o in select["options"]] == ["0", "1", "2"]
    # Every id of the message is distinct, even where two buttons lead to one page.
    assert len(set(message.custom_ids)) == len(message.custom_ids)

    await offline.click(alice, message, label="\u203a")
    assert message.content == "two"
    await offline.click(alice, message, label="\u00bb")
    assert message.content == "three"
    assert labels(message)[3:5] == [("\u203a", True), ("\u00bb", True)]
    await offline.select(alice, message, ["0"])
    assert message.content == "one"

    opened = await offline.click(alice, message, label="1 / 3")
    assert opened.modal is not None
    submitted = await offline.submit_modal(alice, opened, {"page": "2"})
    assert submitted.response is not None
    assert submitted.response.type is discord.InteractionResponseType.message_update
    assert message.content == "two"
    assert session.page == 1

    await offline.click(alice, message, label="Close")
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.ENDED, 1)
    assert message.components == []
    assert message.content == "two"


async def test_pages_can_be_embeds_and_mappings(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    pages: list[PageLike] = [
        discord.Embed(title="First"),
        {"content": "Second", "embed": {"title": "Second embed"}},
        {"content": None, "embed": None},
    ]
    session, message = await start(offline, manager, lambda i: PaginationSession(i, pages), alice)
    assert message.content == ""
    assert [e["title"] for e in message.embeds] == ["First"]
    await offline.click(alice, message, label="\u203a")
    assert message.content == "Second"
    assert [e["title"] for e in message.embeds] == ["Second embed"]
    await offline.click(alice, message, label="\u203a")
    assert message.content == "*(empty page)*"
    assert message.embeds == []
    assert session.data["pages"][0] == as_page(discord.Embed(title="First"))
    with pytest.raises(TypeError):
        as_page(3)  # type: ignore[arg-type]


async def test_forged_and_stale_page_numbers(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, lambda i: PaginationSession(i, PAGES), alice)
    for target in (3, 99, -1, "two", "1e3", "", "99999999999999999999999999"):
        result = await forge_click(offline, alice, message, go_id(session, target))
        assert ephemeral_text(result) == "That page does not exist."
    assert message.content == "one"
    assert message.edits == 0

    garbage = [
        session.custom_id.push("go").build(),  # no page at all
        f"nyx:{session.id}:%zz",  # a bad escape
        session.custom_id.push("explode").build(),
    ]
    answers = [await forge_click(offline, alice, message, custom_id) for custom_id in garbage]
    assert ephemeral_text(answers[0]) == "That page does not exist."
    assert ephemeral_text(answers[1]) == "That button is no longer valid."
    assert ephemeral_text(answers[2]) == "That button is no longer valid."

    select = discord.ComponentType.string_select.value
    select_id = session.custom_id.push("select").build()
    for values in (["7"], ["x"], []):
        result = await forge_click(
            offline, alice, message, select_id, component_type=select, values=values
        )
        assert ephemeral_text(result) == "That page does not exist."

    # A stale copy of a button goes where it said: the target is absolute.
    old_next = go_id(session, 1)
    await offline.click(alice, message, label="\u00bb")
    assert message.content == "three"
    await forge_click(offline, alice, message, old_next)
    assert message.content == "two"
    assert manager.get(session.id) is session


async def test_invalid_jump_entries_get_an_ephemeral_answer(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, lambda i: PaginationSession(i, PAGES), alice)
    for typed in ("0", "4", "abc", "-1", "\uff12"):
        opened = await offline.click(alice, message, label="1 / 3")
        result = await offline.submit_modal(alice, opened, {"page": typed})
        assert ephemeral_text(result) == "Enter a page number from 1 to 3."
    assert message.content == "one"
    opened = await offline.click(alice, message, label="1 / 3")
    await offline.submit_modal(alice, opened, {"page": " 3 "})
    assert message.content == "three"
    assert session.result == 2


async def test_only_the_owner_browses(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    _, message = await start(offline, manager, lambda i: PaginationSession(i, PAGES), alice)
    result = await offline.click(bob, message, label="\u203a")
    assert ephemeral_text(result) == "Only the person who started this can use it."
    assert message.content == "one"


async def test_bounds_one_page_and_many_pages(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    _, single = await start(offline, manager, lambda i: PaginationSession(i, ["only"]), alice)
    assert labels(single) == [
        ("\u00ab", True),
        ("\u2039", True),
        ("1 / 1", True),
        ("\u203a", True),
        ("\u00bb", True),
        ("Close", False),
    ]
    assert single.selects == []

    many = [f"page {n}" for n in range(1, 31)]
    session, message = await start(
        offline, manager, lambda i: PaginationSession(i, many, start_page=99), alice
    )
    assert message.content == "page 30"  # the start page is clamped
    assert message.selects == []  # a select holds 25 options at most
    await offline.click(alice, message, label="\u00ab")
    assert message.content == "page 1"
    opened = await offline.click(alice, message, label="1 / 30")
    await offline.submit_modal(alice, opened, {"page": "27"})
    assert message.content == "page 27"
    assert session.page == 26

    with pytest.raises(ValueError, match="at least one page"):
        PaginationSession(opened.interaction, [])
    with pytest.raises(ValueError, match="page_count"):
        PaginationSession(opened.interaction, source=_squares)


async def _squares(index: int) -> PageLike:
    await asyncio.sleep(0)
    return f"{index} squared is {index * index}"


class Squares(PaginationSession):
    """Pages made on demand by a subclass: restorable, unlike a source callable."""

    session_type = "tests.squares"

    async def get_page(self, index: int) -> PageLike:
        return await _squares(index)


async def test_async_sources(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")
    _, message = await start(
        offline,
        manager,
        lambda i: PaginationSession(i, source=_squares, page_count=1000),
        alice,
    )
    assert message.content == "0 squared is 0"
    await offline.click(alice, message, label="\u00bb")
    assert message.content == "999 squared is 998001"

    session, message = await start(offline, manager, lambda i: Squares(i, page_count=10), alice)
    opened = await offline.click(alice, message, label="1 / 10")
    await offline.submit_modal(alice, opened, {"page": "8"})
    assert message.content == "7 squared is 49"
    assert "pages" not in session.data


async def test_expiry_removes_the_components_by_message_id(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(offline, manager, lambda i: PaginationSession(i, PAGES), alice)
    await offline.click(alice, message, label="\u203a")
    await clock.advance(16 * 60)  # past the TTL and the interaction tokens' 15 minutes
    end = await wait_ended(session)
    assert (end.code, end.result) == (EndCode.EXPIRED, 1)
    assert message.components == []
    assert message.content == "two"
    edit = offline.requests[-1]
    assert (edit.method, edit.route) == ("PATCH", "/channels/{channel_id}/messages/{message_id}")
    stale = await forge_click(offline, alice, message, go_id(session, 2))
    assert ephemeral_text(stale).startswith("This has expired.")


async def test_a_restored_session_without_its_source_says_so(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")
    session, message = await start(
        offline, manager, lambda i: PaginationSession(i, source=_squares, page_count=5), alice
    )
    session._source = None  # what a restore from a store gives
    result = await offline.click(alice, message, label="\u203a")
    assert "went wrong" in ephemeral_text(result)
    assert message.content == "0 squared is 0"


@pytest.mark.redis
async def test_survives_a_restart_on_redis(
    offline: OfflineDiscord,
    redis_server: RedisServer,
    redis_client: Redis,
    clock: ManualClock,
) -> None:
    alice = offline.add_member("alice")
    async with processes(offline, redis_server, clock, [PaginationSession, Squares]) as spawn:
        first = await spawn(first=True)
        lists, list_message = await start(
            offline, first.manager, lambda i: PaginationSession(i, PAGES), alice
        )
        _, squares_message = await start(
            offline, first.manager, lambda i: Squares(i, page_count=4), alice
        )
        await offline.click(alice, list_message, label="\u203a")
        await first.manager.aclose()

        second = await spawn()
        await offline.click(alice, list_message, label="\u203a", client=second.client)
        assert list_message.content == "three"
        await offline.click(alice, squares_message, label="\u00bb", client=second.client)
        assert squares_message.content == "3 squared is 9"
        forged = await forge_click(
            offline, alice, list_message, go_id(lists, 9), client=second.client
        )
        assert ephemeral_text(forged) == "That page does not exist."
        restored = second.manager.get(lists.id)
        assert isinstance(restored, PaginationSession)
        with pytest.raises(SessionStateError, match="restored from the store"):
            _ = restored.start_interaction
        await offline.click(alice, list_message, label="Close", client=second.client)
        assert list_message.components == []
        assert (await wait_ended(restored)).result == 2
        await clock.advance(301)
        # The end hook tidies the message first; the record is removed after it.
        for _ in range(500):
            if not squares_message.components and await second.manager.active() == {}:
                break
            await asyncio.sleep(0.01)
        assert squares_message.components == []
        assert await second.manager.active() == {}
        assert squares_message.content == "3 squared is 9"  # the last page stays


def test_page_dicts_are_plain_data() -> None:
    page: Page = as_page({"content": "x", "embed": discord.Embed(title="t")})
    assert page["content"] == "x"
    embed = page.get("embed")
    assert isinstance(embed, dict) and embed["title"] == "t"
