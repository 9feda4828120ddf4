"""A profile form: text fields checked as they are typed in, then two choices.

Run it with ``DISCORD_TOKEN=... python examples/form.py`` and use ``/profile``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from nyx_sessions import Clock, EndCode, SessionManager
from nyx_sessions.sessions import ChoiceField, FormSession, TextField


@dataclass
class Profile:
    """What the form gives back."""

    name: str
    age: int
    bio: str | None
    pronouns: str
    games: list[str]


def adult_age(text: str) -> str | None:
    """Accept a whole number from 13 to 120 (Discord's minimum age is 13)."""
    if not text.isdigit():
        return "please enter a whole number."
    if not 13 <= int(text) <= 120:
        return "must be between 13 and 120."
    return None


class ProfileForm(FormSession[Profile]):
    """The form; its fields and validators are class attributes, so restores keep them."""

    session_type = "examples.profile-form"
    title = "Your profile"
    result_type = Profile
    max_lifetime = 14 * 60  # finished within the interaction token's 15 minutes
    fields = (
        TextField("name", "Display name", max_length=32),
        TextField("age", "Age", validate=adult_age, convert=int, max_length=3),
        TextField("bio", "About you", required=False, paragraph=True, max_length=300),
        ChoiceField("pronouns", "Pronouns", options=["she/her", "he/him", "they/them", "other"]),
        ChoiceField(
            "games",
            "Games you play",
            options=[("Minecraft", "mc"), ("Chess", "chess"), ("Rocket League", "rl")],
            min_values=0,
            max_values=3,
        ),
    )


class FormBot(discord.Client):
    """A client with a command tree, a session manager and the profiles it collected."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(self, clock=clock, sessions=[ProfileForm])
        self.profiles: dict[int, Profile] = {}

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def close(self) -> None:
        await self.manager.aclose()  # live sessions end (and tidy) while Discord is reachable
        await super().close()


def build_bot(*, clock: Clock | None = None) -> FormBot:
    """Return the bot with ``/profile``."""
    bot = FormBot(clock=clock)

    @bot.tree.command(description="Fill in your profile")
    async def profile(interaction: discord.Interaction[Any]) -> None:
        form = ProfileForm(interaction)
        if not await bot.manager.start(form):
            return
        end = await form.end_promise
        if end.code is EndCode.ENDED and isinstance(end.result, Profile):
            bot.profiles[interaction.user.id] = end.result
            await interaction.followup.send(f"Saved, {end.result.name}!", ephemeral=True)

    return bot


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
