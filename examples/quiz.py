"""A timed quiz: 30 seconds for every question, however fast the answers come.

Run it with ``DISCORD_TOKEN=... python examples/quiz.py`` and use ``/quiz``.

The handlers return False, so no answer refreshes the TTL: it is a hard time limit.
The result is the score, also when time runs out.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import discord
from discord import app_commands

from nyx_sessions import (
    AbstractSession,
    Clock,
    CustomIdError,
    EndCode,
    OwnerOnly,
    SessionManager,
    StringIterator,
)

_log = logging.getLogger(__name__)


class Question(NamedTuple):
    """A question, its choices, and the index of the right one."""

    text: str
    choices: tuple[str, ...]
    answer: int


QUESTIONS = (
    Question("How many legs does a spider have?", ("6", "8", "10"), 1),
    Question("Which planet is the largest?", ("Saturn", "Neptune", "Jupiter"), 2),
    Question("What is H\u2082O?", ("Water", "Salt", "Hydrogen"), 0),
)


class Quiz(AbstractSession[int]):
    """Asks :data:`QUESTIONS` in turn; only the owner answers; ends after the last one."""

    session_type = "examples.quiz"
    ttl = 30  # seconds for the whole quiz: the handlers never refresh it
    update_filter = OwnerOnly()

    async def start(self) -> None:
        self.data.update(question=0, score=0)
        self.result = 0
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message(self.ask(""), view=self.view())

    def ask(self, verdict: str) -> str:
        question = QUESTIONS[self.data["question"]]
        number = self.data["question"] + 1
        return f"{verdict}**Question {number}/{len(QUESTIONS)}:** {question.text}"

    def view(self) -> discord.ui.View:
        number: int = self.data["question"]
        view = discord.ui.View(timeout=None)
        for index, choice in enumerate(QUESTIONS[number].choices):
            # The question number travels too: a late click on an old question is refused.
            custom_id = self.custom_id.push("answer").push(number).push(index).build()
            view.add_item(discord.ui.Button(label=choice, custom_id=custom_id))
        return view

    def final(self, headline: str) -> str:
        return f"{headline.rstrip()} You scored **{self.data['score']}/{len(QUESTIONS)}**."

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        data: Any = interaction.data
        try:
            tokens = self.manager.codec.create_iterator(data["custom_id"])
        except CustomIdError:  # a forged id with a bad escape
            tokens = StringIterator(())
        number: int = self.data["question"]
        choices = QUESTIONS[number].choices
        picked = tokens.get_int_at(2, min_value=0, max_value=len(choices) - 1)
        if tokens.get_at(0) != "answer" or tokens.get_int_at(1) != number or picked is None:
            await interaction.response.send_message("That question is over.", ephemeral=True)
            return False
        right = picked == QUESTIONS[number].answer
        self.data["score"] += int(right)
        self.result = self.data["score"]
        self.data["question"] = number + 1
        verdict = "Right! " if right else f"No, it was {choices[QUESTIONS[number].answer]}. "
        if self.data["question"] == len(QUESTIONS):
            await interaction.response.edit_message(content=self.final(verdict), view=None)
            await self.stop(result=self.data["score"])
        else:
            await interaction.response.edit_message(content=self.ask(verdict), view=self.view())
        return False  # never refresh: the TTL is the time limit

    async def end(self) -> None:
        self.result = self.data["score"]
        message = self.message  # by id: works after a restart and after 15 minutes
        if self.end_code is EndCode.EXPIRED and message is not None:
            try:
                await message.edit(content=self.final("\u23f0 Time's up!"), view=None)
            except discord.HTTPException as error:  # deleted, or Discord refused
                _log.info("Quiz %s: could not edit its message: %s", self.id, error)


class QuizBot(discord.Client):
    """A client with a command tree, a session manager and the best scores."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.manager = SessionManager(self, clock=clock, sessions=[Quiz])
        self.best: dict[int, int] = {}

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def close(self) -> None:
        await self.manager.aclose()  # live sessions end (and tidy) while Discord is reachable
        await super().close()


def build_bot(*, clock: Clock | None = None) -> QuizBot:
    """Return the bot with ``/quiz``."""
    bot = QuizBot(clock=clock)

    @bot.tree.command(description="Three questions, thirty seconds")
    async def quiz(interaction: discord.Interaction[Any]) -> None:
        session = Quiz(interaction)
        if await bot.manager.start(session):
            score: int = (await session.end_promise).result or 0
            user = interaction.user.id
            bot.best[user] = max(score, bot.best.get(user, 0))

    return bot


if __name__ == "__main__":
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit(f"usage: DISCORD_TOKEN=... python {__file__}")
    build_bot().run(token)
