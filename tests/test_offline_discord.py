"""The offline Discord against plain discord.py: views, modals, commands, REST and errors."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from nyx_sessions.testing import ManualClock, OfflineDiscord, RecordedRequest

Interaction = discord.Interaction[Any]


@pytest.fixture
async def offline() -> AsyncIterator[OfflineDiscord]:
    async with OfflineDiscord() as offline:
        yield offline


def tree_of(offline: OfflineDiscord) -> app_commands.CommandTree[Any]:
    return app_commands.CommandTree(offline.client)


def text_channel(offline: OfflineDiscord) -> discord.TextChannel:
    channel = offline.client.get_channel(offline.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


class CounterView(discord.ui.View):
    def __init__(self, start: int = 0) -> None:
        super().__init__(timeout=None)
        self.count = start

    @discord.ui.button(label="+1", custom_id="counter:inc")
    async def inc(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        self.count += 1
        await interaction.response.edit_message(content=str(self.count))


# -- login and the guild -----------------------------------------------------------


async def test_login_fills_user_application_and_guild(offline: OfflineDiscord) -> None:
    client = offline.client
    assert client.user is not None
    assert client.user.id == offline.bot.id
    assert client.application_id == offline.world.application_id
    assert offline.guild.name == "Offline Guild"
    assert offline.guild.me is not None
    assert offline.guild.me.id == offline.bot.id
    assert text_channel(offline).name == "general"
    other = offline.add_channel("other")
    mods = offline.add_role("mods", permissions=discord.Permissions(manage_messages=True))
    assert offline.guild.get_channel(other.id) is not None
    role = offline.guild.get_role(mods.id)
    assert role is not None
    assert role.permissions.manage_messages
    assert [r.path for r in offline.requests] == ["/users/@me", "/oauth2/applications/@me"]


async def test_members_roles_and_permissions_reach_the_interaction(
    offline: OfflineDiscord,
) -> None:
    mods = offline.add_role("mods", permissions=discord.Permissions(manage_messages=True))
    admins = offline.add_role("admins", permissions=discord.Permissions(administrator=True))
    alice = offline.add_member("alice", roles=[mods])
    bob = offline.add_member("bob")
    root = offline.add_member("root", roles=[admins])
    fixed = offline.add_member("fixed", permissions=discord.Permissions(kick_members=True))
    seen: dict[str, Interaction] = {}
    for user in (alice, bob, root, fixed):
        seen[user.name] = (await offline.slash_command(user, "x", wait=False)).interaction

    member = seen["alice"].user
    assert isinstance(member, discord.Member)
    assert [role.name for role in member.roles] == ["@everyone", "mods"]
    assert seen["alice"].guild is offline.guild
    assert seen["alice"].permissions.manage_messages
    assert not seen["bob"].permissions.manage_messages
    assert seen["bob"].permissions.send_messages
    assert seen["root"].permissions == discord.Permissions.all()
    assert seen["fixed"].permissions == discord.Permissions(kick_members=True)
    assert seen["alice"].app_permissions.send_messages
    assert seen["alice"].filesize_limit > 0

    offline.set_roles(bob, [mods])
    again = await offline.slash_command(bob, "x", wait=False)
    assert again.interaction.permissions.manage_messages


async def test_dm_users_interact_without_a_guild(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)

    @tree.command()
    async def hello(interaction: Interaction) -> None:
        await interaction.response.send_message(f"hi {interaction.user.name}")

    dave = offline.add_user("dave")
    res = await offline.slash_command(dave, "hello")
    assert res.interaction.guild is None
    assert type(res.interaction.user) is discord.User
    assert isinstance(res.interaction.channel, discord.DMChannel)
    assert res.message is not None
    assert res.message.content == "hi dave"
    assert "guild_id" not in res.message.payload


# -- components ----------------------------------------------------------------------


async def test_button_edits_the_message_with_a_type_7_response(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)

    @tree.command()
    async def counter(interaction: Interaction, n: int) -> None:
        await interaction.response.send_message(str(n), view=CounterView(n))

    alice = offline.add_member("alice")
    res = await offline.slash_command(alice, "counter", options={"n": 3})
    assert res.response is not None
    assert res.response.type is discord.InteractionResponseType.channel_message
    message = res.message
    assert message is not None
    assert message.content == "3"
    assert message.payload["type"] == 20  # a chat-input command's reply
    assert [b["label"] for b in message.buttons] == ["+1"]
    assert message.find(label="+1")["custom_id"] == "counter:inc"

    click = await offline.click(alice, message, label="+1")
    assert click.response is not None
    assert click.response.type is discord.InteractionResponseType.message_update
    assert click.message is message
    assert message.content == "4"
    assert message.edits == 1
    assert message.history[0]["content"] == "3"
    await offline.click(alice, message.id, custom_id="counter:inc")
    assert message.content == "5"


async def test_persistent_view_survives_without_a_message_id(offline: OfflineDiscord) -> None:
    alice = offline.add_member("alice")
    sent = await text_channel(offline).send("10", view=CounterView(10))
    message = offline.message(sent.id)
    assert message.custom_ids == ["counter:inc"]
    # A fresh process: only the persistent view, registered without a message id.
    second = discord.Client(intents=discord.Intents.none())
    second.add_view(CounterView(100))
    await offline.login(second)
    await offline.click(alice, message, label="+1", client=second)
    assert message.content == "101"
    await offline.click(alice, message, label="+1")
    assert message.content == "11"


async def test_string_and_user_selects_get_values_and_members(offline: OfflineDiscord) -> None:
    mods = offline.add_role("mods")
    alice = offline.add_member("alice")
    bob = offline.add_member("bob", roles=[mods])
    picked: list[object] = []

    class Menus(discord.ui.View):
        @discord.ui.select(
            custom_id="fruit",
            options=[
                discord.SelectOption(label="Apple", value="a"),
                discord.SelectOption(label="B"),
            ],
        )
        async def fruit(self, interaction: Interaction, select: discord.ui.Select[Any]) -> None:
            picked.extend(select.values)
            await interaction.response.defer()

        @discord.ui.select(cls=discord.ui.UserSelect, custom_id="who")
        async def who(self, interaction: Interaction, select: discord.ui.UserSelect[Any]) -> None:
            picked.extend(select.values)
            await interaction.response.send_message("picked", ephemeral=True)

        @discord.ui.select(cls=discord.ui.RoleSelect, custom_id="role")
        async def role(self, interaction: Interaction, select: discord.ui.RoleSelect[Any]) -> None:
            picked.extend(select.values)
            await interaction.response.defer()

        @discord.ui.select(cls=discord.ui.ChannelSelect, custom_id="where")
        async def where(
            self, interaction: Interaction, select: discord.ui.ChannelSelect[Any]
        ) -> None:
            picked.extend(select.values)
            await interaction.response.defer()

        @discord.ui.select(cls=discord.ui.MentionableSelect, custom_id="any", max_values=2)
        async def anything(
            self, interaction: Interaction, select: discord.ui.MentionableSelect[Any]
        ) -> None:
            picked.extend(select.values)
            await interaction.response.defer()

    sent = await text_channel(offline).send("menus", view=Menus())
    message = offline.message(sent)
    assert [select["custom_id"] for select in message.selects] == [
        "fruit",
        "who",
        "role",
        "where",
        "any",
    ]

    res = await offline.select(alice, message, ["a"], custom_id="fruit")
    assert res.response is not None
    assert res.response.type is discord.InteractionResponseType.deferred_message_update
    res = await offline.select(alice, message, [bob], custom_id="who")
    assert res.ephemeral
    assert res.message is not None
    assert res.message.content == "picked"
    assert picked[0] == "a"
    member = picked[1]
    assert isinstance(member, discord.Member)
    assert member.id == bob.id
    assert [role.name for role in member.roles] == ["@everyone", "mods"]

    picked.clear()
    await offline.select(alice, message, [mods], custom_id="role")
    await offline.select(alice, message, [offline.channel], custom_id="where")
    await offline.select(alice, message, [alice.id, mods], custom_id="any")
    role, channel, user, other_role = picked
    assert isinstance(role, discord.Role)
    assert role.id == mods.id
    assert isinstance(channel, app_commands.AppCommandChannel)
    assert channel.id == offline.channel.id
    assert isinstance(user, discord.Member)
    assert user.id == alice.id
    assert isinstance(other_role, discord.Role)

    with pytest.raises(ValueError, match="no option"):
        await offline.select(alice, message, ["z"], custom_id="fruit")
    with pytest.raises(ValueError, match="cannot pick"):
        await offline.select(alice, message, [mods], custom_id="who")


async def test_modal_from_a_button_is_submitted_with_values(offline: OfflineDiscord) -> None:
    submitted: list[str] = []

    class Feedback(discord.ui.Modal, title="Feedback"):
        text: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Text", custom_id="text")
        extra: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Extra", custom_id="extra", required=False
        )

        async def on_submit(self, interaction: Interaction) -> None:
            submitted.extend([self.text.value, self.extra.value])
            await interaction.response.edit_message(content="thanks", view=None)

    class Ask(discord.ui.View):
        @discord.ui.button(label="Feedback", custom_id="ask")
        async def ask(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
            await interaction.response.send_modal(Feedback(custom_id="feedback"))

    alice = offline.add_member("alice")
    sent = await text_channel(offline).send("tell us", view=Ask())
    opened = await offline.click(alice, sent.id, label="Feedback")
    assert opened.response is not None
    assert opened.response.type is discord.InteractionResponseType.modal
    assert opened.modal is not None
    assert opened.modal["title"] == "Feedback"
    assert opened.message is None

    with pytest.raises(ValueError, match="required"):
        await offline.submit_modal(alice, opened, values={})
    res = await offline.submit_modal(alice, "feedback", values={"text": "great"})
    assert submitted == ["great", ""]
    assert res.response is not None
    assert res.response.type is discord.InteractionResponseType.message_update
    message = offline.message(sent.id)
    assert res.message is message
    assert message.content == "thanks"
    assert message.components == []


async def test_modal_from_a_command_with_a_labelled_user_select(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)
    chosen: list[object] = []

    class Pick(discord.ui.Modal, title="Pick"):
        who: discord.ui.Label[Any] = discord.ui.Label(
            text="Who", component=discord.ui.UserSelect(custom_id="who")
        )

        async def on_submit(self, interaction: Interaction) -> None:
            assert isinstance(self.who.component, discord.ui.UserSelect)
            chosen.extend(self.who.component.values)
            await interaction.response.defer()  # closes the modal; there is no message

    @tree.command()
    async def pick(interaction: Interaction) -> None:
        await interaction.response.send_modal(Pick(custom_id="pick"))

    alice, bob = offline.add_member("alice"), offline.add_member("bob")
    opened = await offline.slash_command(alice, "pick")
    assert opened.modal is not None
    assert opened.modal["components"][0]["type"] == discord.ComponentType.label.value
    res = await offline.submit_modal(alice, opened, values={"who": [bob]})
    assert res.response is not None
    assert res.response.type is discord.InteractionResponseType.deferred_message_update
    assert res.message is None
    [member] = chosen
    assert isinstance(member, discord.Member)
    assert member.id == bob.id


# -- application commands -----------------------------------------------------------


async def test_slash_command_options_and_subcommands(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)
    got: dict[str, object] = {}

    @tree.command()
    async def info(
        interaction: Interaction,
        who: discord.Member,
        role: discord.Role,
        where: discord.TextChannel,
        loud: bool,
        ratio: float,
        note: str = "none",
    ) -> None:
        got.update(who=who, role=role, where=where, loud=loud, ratio=ratio, note=note)
        await interaction.response.send_message("ok")

    tag = app_commands.Group(name="tag", description="Tags")

    @tag.command(name="add")
    async def tag_add(interaction: Interaction, name: str, count: int) -> None:
        got.update(tag=name, count=count)
        await interaction.response.send_message(f"{name}x{count}")

    tree.add_command(tag)
    mods = offline.add_role("mods")
    alice, bob = offline.add_member("alice"), offline.add_member("bob", roles=[mods])
    options = {"who": bob, "role": mods, "where": offline.channel, "loud": True, "ratio": 2}
    res = await offline.slash_command(alice, "info", options=options)
    assert res.message is not None
    assert res.message.content == "ok"
    who, role, where = got["who"], got["role"], got["where"]
    assert isinstance(who, discord.Member)
    assert who.id == bob.id
    assert mods.id in who._roles
    assert isinstance(role, discord.Role)
    assert role.id == mods.id
    assert isinstance(where, discord.TextChannel)
    assert where.id == offline.channel.id
    assert got["loud"] is True
    assert got["ratio"] == 2.0
    assert got["note"] == "none"

    res = await offline.slash_command(alice, "tag add", options={"name": "x", "count": "3"})
    assert res.message is not None
    assert res.message.content == "xx3"
    assert res.interaction.command is tag_add


async def test_commands_bot_runs_its_setup_hook_and_syncs() -> None:
    class Bot(commands.Bot):
        hooked = False

        async def setup_hook(self) -> None:
            self.hooked = True

            @self.tree.command()
            async def ping(interaction: Interaction) -> None:
                await interaction.response.send_message("pong")

            await self.tree.sync()

    bot = Bot(command_prefix="!", intents=discord.Intents.none())
    async with OfflineDiscord(bot) as offline:
        assert offline.client is bot
        assert bot.hooked
        sync = await offline.wait_for_request(lambda r: r.method == "PUT", timeout=1)
        assert sync.route == "/applications/{application_id}/commands"
        assert [command["name"] for command in sync.json] == ["ping"]
        res = await offline.slash_command(offline.add_member("alice"), "ping")
        assert res.message is not None
        assert res.message.content == "pong"
    assert bot.is_closed()


# -- what Discord refuses ------------------------------------------------------------


@pytest.mark.answers_twice
async def test_a_second_acknowledgement_is_refused(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)
    errors: list[Exception] = []
    finished = asyncio.Event()

    @tree.command()
    async def twice(interaction: Interaction) -> None:
        await interaction.response.send_message("first")
        try:
            await interaction.response.send_message("second")
        except discord.InteractionResponded as error:
            errors.append(error)
        interaction.response._response_type = None  # past discord.py's own guard
        try:
            await interaction.response.send_message("third")
        except discord.HTTPException as error:
            errors.append(error)
        finished.set()

    res = await offline.slash_command(offline.add_member("alice"), "twice")
    await asyncio.wait_for(finished.wait(), 1)
    responded, refused = errors
    assert isinstance(responded, discord.InteractionResponded)
    assert isinstance(refused, discord.HTTPException)
    assert refused.status == 400
    assert refused.code == 40060
    assert refused.text == "Interaction has already been acknowledged."
    assert res.message is not None
    assert res.message.content == "first"
    assert [m.content for m in offline.messages] == ["first"]


async def test_a_late_first_answer_is_an_unknown_interaction() -> None:
    async with OfflineDiscord(ack_window=0.05) as offline:
        tree = tree_of(offline)
        outcome: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

        @tree.command()
        async def slow(interaction: Interaction) -> None:
            await asyncio.sleep(0.1)
            try:
                await interaction.response.send_message("too late")
            except discord.NotFound as error:
                outcome.set_result(error)

        res = await offline.slash_command(offline.add_member("alice"), "slow", wait=False)
        error = await asyncio.wait_for(outcome, 1)
        assert isinstance(error, discord.NotFound)
        assert error.code == 10062
        assert res.response is None
        assert offline.messages == []
        with pytest.raises(TimeoutError):
            await res.wait_answered(0.01)


async def test_webhooks_need_an_acknowledgement_and_expire_after_15_minutes() -> None:
    clock = ManualClock()
    async with OfflineDiscord(clock=clock) as offline:
        tree = tree_of(offline)
        early: list[discord.HTTPException] = []

        @tree.command()
        async def hurry(interaction: Interaction) -> None:
            try:
                await interaction.followup.send("before")
            except discord.NotFound as error:
                early.append(error)
            await interaction.response.send_message("now")

        res = await offline.slash_command(offline.add_member("alice"), "hurry")
        assert [error.code for error in early] == [10015]
        await clock.advance(15 * 60 + 1)
        with pytest.raises(discord.HTTPException) as caught:
            await res.interaction.edit_original_response(content="later")
        assert caught.value.status == 401
        assert caught.value.code == 50027


# -- deferrals, followups and @original ----------------------------------------------


async def test_defer_then_followups_and_edit_original(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)
    sent: list[discord.WebhookMessage] = []

    @tree.command()
    async def slow(interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        sent.append(await interaction.followup.send("first", wait=True))
        sent.append(await interaction.followup.send("second", wait=True))
        await interaction.edit_original_response(content="edited")

    res = await offline.slash_command(offline.add_member("alice"), "slow")
    assert res.response is not None
    assert res.response.type is discord.InteractionResponseType.deferred_channel_message
    await offline.wait_for_request(lambda r: r.method == "PATCH", timeout=1)
    original = res.message
    assert original is not None
    assert original.ephemeral
    # Discord turns the first followup after a "thinking" deferral into that message.
    assert sent[0].id == original.id
    assert sent[1].id != original.id
    assert original.content == "edited"
    assert not original.flags.loading
    assert [m.content for m in res.followups] == ["second"]
    assert [m.content for m in offline.messages] == ["edited", "second"]


async def test_deferred_update_then_edit_original_edits_the_clicked_message(
    offline: OfflineDiscord,
) -> None:
    class Later(discord.ui.View):
        @discord.ui.button(label="go", custom_id="go")
        async def go(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
            await interaction.response.defer()
            await interaction.edit_original_response(content="done", view=None)

    sent = await text_channel(offline).send("waiting", view=Later())
    res = await offline.click(offline.add_member("alice"), sent, label="go")
    assert res.response is not None
    assert res.response.type is discord.InteractionResponseType.deferred_message_update
    edit = await offline.wait_for_request(lambda r: r.method == "PATCH", timeout=1)
    assert edit.route == "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
    assert res.message is offline.message(sent.id)
    assert res.message.content == "done"
    assert res.message.components == []


# -- channel messages and REST ------------------------------------------------------


async def test_channel_messages_can_be_edited_by_id_and_deleted(offline: OfflineDiscord) -> None:
    channel = text_channel(offline)
    sent = await channel.send("hello")
    assert sent.author.id == offline.bot.id
    # As after a restart: only the channel and message ids are known.
    partial = offline.client.get_partial_messageable(channel.id).get_partial_message(sent.id)
    edited = await partial.edit(content="edited")
    assert edited.content == "edited"
    route = Route(
        "PATCH",
        "/channels/{channel_id}/messages/{message_id}",
        channel_id=channel.id,
        message_id=sent.id,
    )
    await offline.client.http.request(route, json={"content": "raw"})
    record = offline.message(sent.id)
    assert record.content == "raw"
    assert record.edits == 2
    fetched = await channel.fetch_message(sent.id)
    assert fetched.content == "raw"
    await partial.delete()
    assert record.deleted
    with pytest.raises(discord.NotFound) as caught:
        await channel.fetch_message(sent.id)
    assert caught.value.code == 10008
    routes = [r.route for r in offline.requests[2:]]
    assert routes == [
        "/channels/{channel_id}/messages",
        "/channels/{channel_id}/messages/{message_id}",
        "/channels/{channel_id}/messages/{message_id}",
        "/channels/{channel_id}/messages/{message_id}",
        "/channels/{channel_id}/messages/{message_id}",
        "/channels/{channel_id}/messages/{message_id}",
    ]


async def test_files_arrive_as_multipart_attachments(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)

    @tree.command()
    async def upload(interaction: Interaction) -> None:
        file = discord.File(io.BytesIO(b"report"), filename="report.txt")
        await interaction.response.send_message("see file", file=file)

    res = await offline.slash_command(offline.add_member("alice"), "upload")
    assert res.message is not None
    [attachment] = res.message.payload["attachments"]
    assert attachment["filename"] == "report.txt"
    assert attachment["size"] == 6
    callback = offline.requests[-1]
    assert callback.json["data"]["content"] == "see file"
    assert [(f.filename, f.data) for f in callback.files] == [("report.txt", b"report")]
    sent = await text_channel(offline).send(file=discord.File(io.BytesIO(b"x"), "x.bin"))
    assert [a.filename for a in sent.attachments] == ["x.bin"]


async def test_ephemeral_messages_are_kept_but_not_in_the_channel(offline: OfflineDiscord) -> None:
    tree = tree_of(offline)

    @tree.command()
    async def secret(interaction: Interaction) -> None:
        await interaction.response.send_message("psst", ephemeral=True)

    res = await offline.slash_command(offline.add_member("alice"), "secret")
    assert res.ephemeral
    assert res.message is not None
    assert res.message.ephemeral
    assert offline.messages == [res.message]
    with pytest.raises(discord.NotFound):
        await text_channel(offline).fetch_message(res.message.id)
    original = await res.interaction.original_response()
    assert original.content == "psst"
    assert original.flags.ephemeral


async def test_requests_are_recorded_and_unknown_routes_answer_404(
    offline: OfflineDiscord,
) -> None:
    with pytest.raises(discord.NotFound, match="no route for GET /api/v10/guilds/1/bans"):
        await offline.client.http.request(Route("GET", "/guilds/{guild_id}/bans", guild_id=1))
    unknown = offline.requests[-1]
    assert (unknown.method, unknown.path, unknown.route, unknown.status) == (
        "GET",
        "/guilds/1/bans",
        None,
        404,
    )
    assert all(isinstance(r, RecordedRequest) and r.time > 0 for r in offline.requests)
    pending = asyncio.ensure_future(
        offline.wait_for_request(lambda r: r.json and r.json["content"] == "later", timeout=1)
    )
    await asyncio.sleep(0)
    assert not pending.done()
    await text_channel(offline).send("later")
    assert (await pending).status == 200
    with pytest.raises(TimeoutError):
        await offline.wait_for_request(lambda r: r.method == "HEAD", timeout=0.01)


# -- lifecycle ------------------------------------------------------------------------


async def test_exit_restores_route_base_and_closes_client_and_server() -> None:
    before = Route.BASE
    async with OfflineDiscord() as offline:
        base = Route.BASE
        assert base.startswith("http://127.0.0.1:")
        assert base.endswith("/api/v10")
        with pytest.raises(RuntimeError, match="another OfflineDiscord"):
            async with OfflineDiscord():
                pass
        assert base == Route.BASE
    assert before == Route.BASE
    assert offline.client.is_closed()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(base + "/users/@me")
    await offline.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="only once"):
        await offline.__aenter__()


async def test_feed_and_make_interaction_payload_are_the_low_level_path(
    offline: OfflineDiscord,
) -> None:
    alice = offline.add_member("alice")
    seen: list[Interaction] = []

    async def on_interaction(interaction: Interaction) -> None:
        seen.append(interaction)
        await interaction.response.send_message("raw", ephemeral=True)

    offline.client.event(on_interaction)
    payload = offline.make_interaction_payload(
        alice, discord.InteractionType.component, {"custom_id": "x", "component_type": 2}
    )
    assert payload["attachment_size_limit"] > 0
    assert payload["member"]["flags"] == 0
    res = await offline.feed(payload)
    assert seen == [res.interaction]
    assert res.interaction.data == payload["data"]
    assert res.answered
    assert res.ephemeral
