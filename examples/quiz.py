"""A timed quiz, written as one conversation: 30 seconds for all three questions.

Run it with ``DISCORD_TOKEN=... python examples/quiz.py`` and use ``/quiz``.

``converse()`` asks the questions in a plain loop. ``max_lifetime`` is the time limit:
answers never buy more time. The result is the score, also when time runs out.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import discord
from discord import app_commands

from nyx_sessions import Clock, ConversationSession, EndCode, OwnerOnly, SessionManager

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


class Quiz(ConversationSession[int]):
    """Asks :data:`QUESTIONS` in turn; only the owner answers; ends after the last one."""

    session_type = "examples.quiz"
    max_lifetime = 30  # seconds for the whole quiz
    update_filter = OwnerOnly()
    not_now_text = "That question is over."  # a button of an earlier question

    async def converse(self) -> int:
        score = self.result = 0  # the result so far, for an expiry
        answer: discord.Interaction[Any] = self.start_interaction
        verdict = ""
        for number, question in enumerate(QUESTIONS):
            text = f"{verdict}**Question {number + 1}/{len(QUESTIONS)}:** {question.text}"
            view = discord.ui.View(timeout=None)
            for index, choice in enumerate(question.choices):
                # The question travels in the action: a late click on an old one is refused.
                custom_id = self.action_id(f"q{number}", index)
                view.add_item(discord.ui.Button(label=choice, custom_id=custom_id))
            if number == 0:
                await answer.response.send_message(text, view=view)
            else:
                await answer.response.edit_message(content=text, view=view)
            answer = await self.wait_for(f"q{number}")
            picked = int(self.action_of(answer)[1])
            right = picked == question.answer
            score = self.result = score + int(right)
            verdict = "Right! " if right else f"No, it was {question.choices[question.answer]}. "
        await answer.response.edit_message(content=self.final(verdict), view=None)
        return score

    def final(self, headline: str) -> str:
        return f"{headline.rstrip()} You scored **{self.result}/{len(QUESTIONS)}**."

    async def end(self) -> None:
        await super().end()
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
