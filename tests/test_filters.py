from __future__ import annotations

from typing import Any

import discord
import pytest

from nyx_sessions import (
    AbstractSessionUpdateFilter,
    Cooldown,
    EndCode,
    GuildOnly,
    HasPermissions,
    HasRole,
    OwnerOnly,
    SessionManager,
    UserIn,
)
from nyx_sessions.filters import AllOf, AnyOf, Not
from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.sessions import Probe


async def run(
    offline: OfflineDiscord,
    manager: SessionManager,
    update_filter: Any,
    owner: Any,
    clicker: Any,
) -> tuple[bool, str | None]:
    """Start a Probe owned by ``owner``; ``clicker`` clicks; return (passed, reply text)."""

    class Filtered(Probe):
        pass

    Filtered.update_filter = update_filter
    command = await offline.slash_command(owner, "probe", wait=False)
    session = Filtered(command.interaction)
    assert await manager.start(session)
    click = await offline.click(clicker, offline.messages[-1], label="go")
    passed = len(session.data["seen"]) == 1
    reply = click.message.content if click.ephemeral and click.message is not None else None
    await manager.end(session)
    return passed, reply


async def test_owner_only(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    assert await run(offline, manager, OwnerOnly(), alice, alice) == (True, None)
    passed, reply = await run(offline, manager, OwnerOnly("Not yours."), alice, bob)
    assert (passed, reply) == (False, "Not yours.")


async def test_user_in(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    assert (await run(offline, manager, UserIn(bob.id), alice, bob))[0]
    assert not (await run(offline, manager, UserIn(bob.id), alice, alice))[0]


async def test_has_role_by_id_and_name(offline: OfflineDiscord, manager: SessionManager) -> None:
    mods = offline.add_role("mods")
    admins = offline.add_role("admins")
    alice = offline.add_member("alice", roles=[mods])
    bob = offline.add_member("bob")
    assert (await run(offline, manager, HasRole(mods.id), bob, alice))[0]
    assert (await run(offline, manager, HasRole("mods"), bob, alice))[0]
    passed, reply = await run(offline, manager, HasRole("mods"), alice, bob)
    assert not passed and reply == "You need the mods role to use this."
    assert not (
        await run(offline, manager, HasRole(mods.id, admins.id, require_all=True), bob, alice)
    )[0]


async def test_has_permissions(offline: OfflineDiscord, manager: SessionManager) -> None:
    boss = offline.add_member("boss", permissions=discord.Permissions(manage_messages=True))
    pleb = offline.add_member("pleb", permissions=discord.Permissions.none())
    check = HasPermissions(manage_messages=True)
    assert (await run(offline, manager, check, pleb, boss))[0]
    passed, reply = await run(offline, manager, check, boss, pleb)
    assert not passed and reply == "You need manage messages to use this."
    with pytest.raises(TypeError, match="unknown permissions"):
        HasPermissions(fly=True)


async def test_guild_only_refuses_direct_messages(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    dave = offline.add_user("dave")

    class InDms(Probe):
        start_filter = GuildOnly()

    command = await offline.slash_command(dave, "probe", dm=True, wait=False)
    session = InDms(command.interaction)
    assert await manager.start(session) is False
    assert (await session.end_promise).code is EndCode.REJECTED
    await command.wait_answered()
    assert command.message is not None
    assert command.message.content == "This can only be used in a server."


async def test_cooldown_says_when_to_try_again(
    offline: OfflineDiscord, manager: SessionManager, clock: ManualClock
) -> None:
    alice = offline.add_member("alice")

    class Limited(Probe):
        update_filter = Cooldown(rate=2, per=10)

    command = await offline.slash_command(alice, "probe", wait=False)
    session = Limited(command.interaction)
    await manager.start(session)
    message = offline.messages[-1]
    await offline.click(alice, message, label="go")
    await offline.click(alice, message, label="go")
    refused = await offline.click(alice, message, label="go")
    assert refused.ephemeral and refused.message is not None
    assert refused.message.content == "You're doing that too often. Try again in 10.0 seconds."
    await clock.advance(4)
    refused = await offline.click(alice, message, label="go")
    assert refused.message is not None and "Try again in 6.0 seconds" in refused.message.content
    await clock.advance(6)
    await offline.click(alice, message, label="go")
    assert len(session.data["seen"]) == 3


async def test_combinators(offline: OfflineDiscord, manager: SessionManager) -> None:
    mods = offline.add_role("mods")
    alice = offline.add_member("alice")
    bob = offline.add_member("bob", roles=[mods])
    carol = offline.add_member("carol")
    owner_or_mod = OwnerOnly() | HasRole("mods")
    assert isinstance(owner_or_mod, AnyOf)
    assert (await run(offline, manager, owner_or_mod, alice, alice))[0]
    assert (await run(offline, manager, owner_or_mod, alice, bob))[0]
    assert not (await run(offline, manager, owner_or_mod, alice, carol))[0]

    owner_and_mod = OwnerOnly("owner!") & HasRole("mods", message="mods!")
    assert isinstance(owner_and_mod, AllOf)
    assert (await run(offline, manager, owner_and_mod, bob, bob))[0]
    # The text comes from the filter that refused.
    assert await run(offline, manager, owner_and_mod, alice, alice) == (False, "mods!")
    assert await run(offline, manager, owner_and_mod, bob, carol) == (False, "owner!")

    not_owner = ~OwnerOnly()
    assert isinstance(not_owner, Not)
    assert (await run(offline, manager, not_owner, alice, bob))[0]
    assert not (await run(offline, manager, not_owner, alice, alice))[0]
    # & flattens
    assert len((OwnerOnly() & GuildOnly() & UserIn(1)).filters) == 3


async def test_a_protocol_only_filter_works(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")

    class Never:
        async def check(self, session: Any, interaction: discord.Interaction[Any]) -> bool:
            return False

    passed, reply = await run(offline, manager, Never(), alice, alice)
    assert not passed and reply == "You can't use this."


async def test_custom_filter_base_class(offline: OfflineDiscord, manager: SessionManager) -> None:
    alice = offline.add_member("alice")

    class EvenIds(AbstractSessionUpdateFilter):
        async def check(self, session: Any, interaction: discord.Interaction[Any]) -> bool:
            return interaction.id % 2 == 0

        def rejection_message(self, session: Any, interaction: Any) -> str | None:
            return "odd"

    combined = EvenIds() | ~EvenIds()
    assert (await run(offline, manager, combined, alice, alice))[0]


async def test_a_filter_that_raises_is_answered_and_reported(
    offline: OfflineDiscord, manager: SessionManager
) -> None:
    alice = offline.add_member("alice")

    class Exploding:
        async def check(self, session: Any, interaction: discord.Interaction[Any]) -> bool:
            raise RuntimeError("filter bug")

    passed, reply = await run(offline, manager, Exploding(), alice, alice)
    assert not passed
    assert reply is not None and "Something went wrong" in reply

    class ExplodingStart(Probe):
        start_filter = Exploding()

    command = await offline.slash_command(alice, "probe", wait=False)
    session = ExplodingStart(command.interaction)
    assert await manager.start(session) is False
    assert (await session.end_promise).code is EndCode.ERROR
    await command.wait_answered()
    assert command.ephemeral
