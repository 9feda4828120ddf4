"""modal_values and select_values read every kind of field from real interactions."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands

from nyx_sessions import ModalValues, modal_values, select_values
from nyx_sessions.testing import OfflineDiscord, RecordedFile

Interaction = discord.Interaction[Any]


class Everything(discord.ui.Modal, title="Everything"):
    title_input: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Title", custom_id="title")
    tags: discord.ui.Label[Any] = discord.ui.Label(
        text="Tags",
        component=discord.ui.Select(
            custom_id="tags",
            max_values=2,
            options=[discord.SelectOption(label=t) for t in ("bug", "ui", "docs")],
        ),
    )
    who: discord.ui.Label[Any] = discord.ui.Label(
        text="Who", component=discord.ui.UserSelect(custom_id="who", required=False)
    )
    role: discord.ui.Label[Any] = discord.ui.Label(
        text="Role", component=discord.ui.RoleSelect(custom_id="role", required=False)
    )
    urgent: discord.ui.Label[Any] = discord.ui.Label(
        text="Urgent", component=discord.ui.Checkbox(custom_id="urgent")
    )
    size: discord.ui.Label[Any] = discord.ui.Label(
        text="Size",
        component=discord.ui.RadioGroup(
            custom_id="size",
            options=[discord.RadioGroupOption(label=s, value=s) for s in ("s", "m")],
            required=False,
        ),
    )
    extras: discord.ui.Label[Any] = discord.ui.Label(
        text="Extras",
        component=discord.ui.CheckboxGroup(
            custom_id="extras",
            required=False,
            options=[discord.CheckboxGroupOption(label=x, value=x) for x in ("logs", "trace")],
        ),
    )
    files: discord.ui.Label[Any] = discord.ui.Label(
        text="Files", component=discord.ui.FileUpload(custom_id="files", required=False)
    )


async def submitted(offline: OfflineDiscord, values: dict[str, object]) -> Interaction:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(offline.client)

    @tree.command()
    async def ask(interaction: Interaction) -> None:
        await interaction.response.send_modal(Everything(custom_id="everything"))

    alice = offline.add_member("alice")
    opened = await offline.slash_command(alice, "ask")
    result = await offline.submit_modal(alice, opened, values, wait=False)
    assert result.interaction is not None
    return result.interaction


async def test_modal_values_reads_every_kind_of_field() -> None:
    async with OfflineDiscord() as offline:
        bob = offline.add_member("bob")
        mods = offline.add_role("mods")
        upload = RecordedFile("files", "log.txt", "text/plain", b"hello")
        interaction = await submitted(
            offline,
            {
                "title": "Crash",
                "tags": ["bug", "ui"],
                "who": [bob],
                "role": [mods],
                "urgent": True,
                "size": "m",
                "extras": ["logs", "trace"],
                "files": [upload],
            },
        )
        values = modal_values(interaction)
    assert isinstance(values, ModalValues)
    assert values.text("title") == "Crash"
    assert values.strings("tags") == ["bug", "ui"]
    [member] = values.picked("who", discord.Member)
    assert member.id == bob.id
    [role] = values.picked("role", discord.Role)
    assert role.name == "mods"
    assert values.flag("urgent") is True
    assert values.text("size") == "m"
    assert values.strings("extras") == ["logs", "trace"]
    [attachment] = values.attachments("files")
    assert attachment.filename == "log.txt"
    assert attachment.size == 5
    assert sorted(values) == [
        "extras",
        "files",
        "role",
        "size",
        "tags",
        "title",
        "urgent",
        "who",
    ]


async def test_modal_values_typed_accessors_refuse_the_wrong_kind() -> None:
    async with OfflineDiscord() as offline:
        interaction = await submitted(offline, {"title": "x", "tags": ["docs"]})
        values = modal_values(interaction)
    assert values.flag("urgent") is False
    assert values.text("size", "none") == "none"
    assert values.attachments("files") == []
    with pytest.raises(TypeError, match="not a checkbox"):
        values.flag("title")
    with pytest.raises(TypeError, match="not text"):
        values.text("tags")
    with pytest.raises(TypeError, match="not a Member"):
        values.picked("tags", discord.Member)


async def test_select_values_strings_and_resolved_members() -> None:
    async with OfflineDiscord() as offline:
        bob, carol = offline.add_member("bob"), offline.add_member("carol")
        tree: app_commands.CommandTree[Any] = app_commands.CommandTree(offline.client)
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Select(
                custom_id="colour", options=[discord.SelectOption(label=c) for c in ("red", "blue")]
            )
        )
        view.add_item(discord.ui.UserSelect(custom_id="people", max_values=2))

        @tree.command()
        async def menu(interaction: Interaction) -> None:
            await interaction.response.send_message("pick", view=view)

        alice = offline.add_member("alice")
        sent = await offline.slash_command(alice, "menu")
        assert sent.message is not None
        colour = await offline.select(alice, sent.message, ["blue"], custom_id="colour", wait=False)
        people = await offline.select(
            alice, sent.message, [bob, carol], custom_id="people", wait=False
        )
        assert colour.interaction is not None and people.interaction is not None
        assert select_values(colour.interaction) == ["blue"]
        assert select_values(colour.interaction, str) == ["blue"]
        members = select_values(people.interaction, discord.Member)
        assert [member.name for member in members] == ["bob", "carol"]
        with pytest.raises(TypeError, match="not a Role"):
            select_values(people.interaction, discord.Role)
        view.stop()
