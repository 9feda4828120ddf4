"""The pytest plugin's fixtures, wait_for_session, message commands and OfflineMessage.text."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from nyx_sessions import (
    AbstractSession,
    GuildOnly,
    OwnerOnly,
    SessionManager,
    SessionStateError,
    action,
)
from nyx_sessions.testing import ManualClock, OfflineDiscord
from nyx_sessions.testing.redis_server import RedisServerMissingError, RedisServerProcess

Interaction = discord.Interaction[Any]


class Counter(AbstractSession[int]):
    update_filter = OwnerOnly()

    async def start(self) -> None:
        self.data["count"] = 0
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.action_id("inc")))
        await self.reply(self.start_interaction, "0", view=view)

    @action("inc")
    async def inc(self, interaction: Interaction) -> bool:
        self.data["count"] += 1
        await self.edit(interaction, content=str(self.data["count"]))
        return True


def test_the_plugin_is_loaded_through_its_entry_point(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.hasplugin("nyx_sessions")


async def test_offline_discord_has_the_guilds_intent(
    offline_discord: OfflineDiscord, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    assert offline_discord.client.intents.guilds
    logged = [record.getMessage() for record in caplog.get_records("setup")]
    assert not [line for line in logged if "Guilds intent" in line]
    assert isinstance(manual_clock, ManualClock)


async def test_wait_for_session_returns_what_commands_started(
    offline_discord: OfflineDiscord, manual_clock: ManualClock
) -> None:
    offline = offline_discord
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(offline.client)
    manager = SessionManager(offline.client, clock=manual_clock)

    @tree.command()
    async def counter(interaction: Interaction) -> None:
        await manager.start(Counter(interaction))

    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    await offline.slash_command(alice, "counter")
    await offline.slash_command(bob, "counter")
    first = await offline.wait_for_session(Counter)
    second = await offline.wait_for_session(Counter)
    assert (first.owner_id, second.owner_id) == (alice.id, bob.id)
    with pytest.raises(TimeoutError, match="no Counter session started"):
        await offline.wait_for_session(Counter, timeout=0.05)
    await manager.aclose()


@pytest.fixture
def bot() -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    return commands.Bot(command_prefix="!", intents=intents)


async def test_prefix_commands_start_sessions_from_a_context(bot: commands.Bot) -> None:
    manager = SessionManager(bot)

    @bot.command(name="counter")
    async def counter_command(ctx: commands.Context[Any]) -> None:
        session = Counter(ctx)
        assert session.start_context is ctx
        await manager.start(session)

    async with OfflineDiscord(bot) as offline:
        alice, bob = offline.add_member("alice"), offline.add_member("bob")
        message = await offline.message_command(alice, "!counter")
        assert message is not None
        assert message.content == "0"
        session = await offline.wait_for_session(Counter)
        assert session.owner_id == alice.id
        assert session.channel_id == offline.channel.id
        assert session.guild_id == offline.guild.id
        assert session.message_id == message.id
        await offline.click(alice, message, label="+1")
        assert message.content == "1"
        refused = await offline.click(bob, message, label="+1")
        assert refused.ephemeral
        assert message.content == "1"
    await manager.aclose()


async def test_a_start_filter_is_never_skipped_for_a_prefix_command(bot: commands.Bot) -> None:
    # A filter checks the start interaction; a prefix command has none. Starting such a
    # session fails loudly, before anything is sent, rather than letting anyone start it.
    manager = SessionManager(bot)

    class ServerOnly(Counter):
        start_filter = GuildOnly()

    @bot.command(name="guarded")
    async def guarded(ctx: commands.Context[Any]) -> None:
        await manager.start(ServerOnly(ctx))

    async with OfflineDiscord(bot) as offline:
        alice = offline.add_member("alice")
        with pytest.raises(commands.CommandInvokeError, match="has a start filter") as raised:
            await offline.message_command(alice, "!guarded")
        assert isinstance(raised.value.original, SessionStateError)
        assert "commands.check" in str(raised.value.original)
        assert offline.messages == []
        assert len(manager) == 0
    await manager.aclose()


async def test_a_failing_prefix_command_raises() -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents)

    @bot.command()
    async def broken(ctx: commands.Context[Any]) -> None:
        raise RuntimeError("boom")

    async with OfflineDiscord(bot) as offline:
        alice = offline.add_member("alice")
        with pytest.raises(commands.CommandInvokeError, match="boom"):
            await offline.message_command(alice, "!broken")
        assert await offline.message_command(alice, "just chatting") is None


async def test_message_commands_need_the_message_content_intent() -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    async with OfflineDiscord(bot) as offline:
        alice = offline.add_member("alice")
        with pytest.raises(ValueError, match="message content intent"):
            await offline.message_command(alice, "!counter")


async def test_message_text_reads_content_embeds_and_components_v2(
    offline_discord: OfflineDiscord,
) -> None:
    offline = offline_discord
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(offline.client)

    class Card(discord.ui.LayoutView):
        container: discord.ui.Container[Any] = discord.ui.Container(
            discord.ui.TextDisplay("# Ticket 7"),
            discord.ui.Section(
                discord.ui.TextDisplay("Status: open"),
                accessory=discord.ui.Button(label="Close", custom_id="close"),
            ),
        )

    @tree.command()
    async def card(interaction: Interaction) -> None:
        await interaction.response.send_message(view=Card(timeout=None))

    @tree.command()
    async def embed(interaction: Interaction) -> None:
        shown = discord.Embed(title="Poll", description="Lunch?")
        shown.add_field(name="pizza", value="2")
        shown.set_footer(text="closes soon")
        await interaction.response.send_message("results", embed=shown)

    alice = offline.add_member("alice")
    cards = await offline.slash_command(alice, "card")
    assert cards.message is not None
    assert cards.message.content == ""
    assert cards.message.text == "# Ticket 7\nStatus: open"
    embeds = await offline.slash_command(alice, "embed")
    assert embeds.message is not None
    assert embeds.message.text == "results\nPoll\nLunch?\npizza: 2\ncloses soon"


async def test_redis_url_is_a_real_server(redis_url: str) -> None:
    import redis.asyncio as redis  # here: the core must import without redis

    assert redis_url.startswith("redis://127.0.0.1:")
    client = redis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set("k", "v")
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()


def test_a_missing_redis_server_binary_is_a_clear_failure() -> None:
    with pytest.raises(RedisServerMissingError, match="not on PATH"):
        RedisServerProcess("nyx-no-such-redis-server")


async def test_a_hybrid_command_run_as_a_slash_command_starts_from_its_context(
    bot: commands.Bot,
) -> None:
    manager = SessionManager(bot)

    @bot.hybrid_command(name="counter")
    async def counter_command(ctx: commands.Context[Any]) -> None:
        session = Counter(ctx)
        assert session.start_context is ctx
        await manager.start(session)

    async with OfflineDiscord(bot) as offline:
        alice = offline.add_member("alice")
        slash = await offline.slash_command(alice, "counter")
        message = await slash.wait_message()
        assert message.content == "0"
        session = await offline.wait_for_session(Counter)
        assert session.owner_id == alice.id
        await offline.click(alice, message, label="+1")
        assert message.content == "1"
        prefixed = await offline.message_command(alice, "!counter")
        assert prefixed is not None and prefixed.content == "0"
    await manager.aclose()
