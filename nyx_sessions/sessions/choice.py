"""ChoiceSession: a poll that everyone in the channel may vote in, once each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import discord

from ..actions import action
from ..codecs import StringIterator
from ..session import AbstractSession
from ._common import edit_by_id, refuse

__all__ = ["ChoiceSession"]

_PER_ROW = 5
_BAR_WIDTH = 10


class ChoiceSession(AbstractSession[dict[str, int]]):
    """A poll: anyone may vote, one vote per user, with a live tally in the message.

    A user who votes again changes their vote (the tally moves it); voting for the
    same option again changes nothing and says so, ephemerally. With
    ``allow_change=False`` a second vote is refused instead, ephemerally, and the first
    one stands. The owner, or anyone with the Manage Messages permission in the
    channel, may close the poll early; otherwise it closes when its TTL runs out
    (votes do not refresh it: :attr:`ttl` is the poll's duration).

    The result is the tally, ``{option: votes}`` in the order of the options, whether
    the poll was closed or ran out. When it ends, the message shows the final tally
    and the buttons are removed (by message id, so this works after a restart).

    Parameters
    ----------
    interaction:
        The interaction that starts the poll; the poll is its response.
    question:
        What is asked.
    options:
        2 to 20 distinct option labels, up to 80 characters each.
    allow_change:
        Whether a user may change their vote.
    duration:
        Seconds the poll stays open; :attr:`ttl` (10 minutes) by default.
    session_id:
        The session's id; random by default.
    """

    session_type = "nyx.choice"
    ttl: float | None = 600.0
    max_options: ClassVar[int] = 20

    not_found_text: ClassVar[str] = "That option does not exist."
    """The ephemeral answer to a vote for an option that does not exist."""
    invalid_text: ClassVar[str] = "That button is no longer valid."
    """The ephemeral answer to a custom id this session does not know."""
    unknown_action_message = invalid_text
    close_refused_text: ClassVar[str] = (
        "Only the person who started the poll, or someone who can manage messages, can close it."
    )
    """The ephemeral answer to a close by someone who may not close the poll."""

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        question: str,
        options: Sequence[str],
        *,
        allow_change: bool = True,
        duration: float | None = None,
        session_id: str | None = None,
    ) -> None:
        super().__init__(interaction, session_id=session_id)
        labels = [str(option) for option in options]
        if not 2 <= len(labels) <= self.max_options:
            raise ValueError(f"a poll needs 2 to {self.max_options} options, not {len(labels)}")
        if len(set(labels)) != len(labels):
            raise ValueError("the options of a poll must be distinct")
        if any(not label or len(label) > 80 for label in labels):
            raise ValueError("an option is 1 to 80 characters long")
        if duration is not None:
            self.ttl = duration
        self.data.update(question=question, options=labels, votes={}, allow_change=allow_change)
        self.result = self.tally()

    # -- the tally ----------------------------------------------------------------------

    @property
    def options(self) -> list[str]:
        """The option labels."""
        return list(self.data["options"])

    def tally(self) -> dict[str, int]:
        """Return the votes per option, in the order of the options."""
        counts = [0] * len(self.data["options"])
        for index in self.data["votes"].values():
            counts[index] += 1
        return dict(zip(self.data["options"], counts, strict=True))

    def render(self, *, closed: bool = False) -> str:
        """Return the message content: the question and the tally."""
        tally = self.tally()
        total = sum(tally.values())
        lines = [f"**{self.data['question']}**"]
        for option, count in tally.items():
            filled = round(_BAR_WIDTH * count / total) if total else 0
            bar = "\u2588" * filled + "\u2591" * (_BAR_WIDTH - filled)
            lines.append(f"`{bar}` {option}: {count}")
        votes = "1 vote" if total == 1 else f"{total} votes"
        lines.append(f"*Poll closed: {votes}.*" if closed else f"*{votes} so far.*")
        return "\n".join(lines)

    def build_view(self) -> discord.ui.View:
        """Return one button per option and a close button."""
        view = discord.ui.View(timeout=None)
        for index, option in enumerate(self.data["options"]):
            view.add_item(
                discord.ui.Button(
                    label=option,
                    custom_id=self.action_id("vote", index),
                    row=index // _PER_ROW,
                )
            )
        view.add_item(
            discord.ui.Button(
                label="Close poll",
                style=discord.ButtonStyle.danger,
                custom_id=self.action_id("close"),
                row=4,
            )
        )
        return view

    # -- hooks --------------------------------------------------------------------------

    async def start(self) -> None:
        """Send the poll."""
        await self.reply(self.start_interaction, self.render(), view=self.build_view())

    @action("vote")
    async def vote(self, interaction: discord.Interaction[Any], index: str = "") -> bool:
        """Count a vote for the option at ``index`` (a forged index is refused)."""
        options: list[str] = self.data["options"]
        chosen = StringIterator([index]).get_int_at(0, min_value=0, max_value=len(options) - 1)
        if chosen is None:
            return await refuse(interaction, self.not_found_text)
        return await self._vote(interaction, chosen)

    @action("close")
    async def close(self, interaction: discord.Interaction[Any]) -> bool:
        """Close the poll, when the user may."""
        if not self.may_close(interaction):
            return await refuse(interaction, self.close_refused_text)
        # Inside a handler, stop() only records the end; it runs once this returns,
        # also if the edit below fails (end() then tidies by message id).
        await self.stop(result=self.tally())
        await self.edit(interaction, content=self.render(closed=True), view=None)
        self.data["tidied"] = True
        return False

    def may_close(self, interaction: discord.Interaction[Any]) -> bool:
        """Whether the user may close the poll: its owner, or a message manager."""
        return interaction.user.id == self.owner_id or interaction.permissions.manage_messages

    async def end(self) -> None:
        """Record the tally as the result; show it as final and remove the buttons."""
        self.result = self.tally()
        if not self.data.get("tidied"):
            await edit_by_id(self, content=self.render(closed=True), view=None)

    async def _vote(self, interaction: discord.Interaction[Any], index: int) -> bool:
        votes: dict[str, int] = self.data["votes"]
        voter = str(interaction.user.id)  # str keys: the same in memory and in a store
        previous = votes.get(voter)
        option = self.data["options"][index]
        if previous == index:
            return await refuse(interaction, f"You already voted for **{option}**.")
        if previous is not None and not self.data["allow_change"]:
            earlier = self.data["options"][previous]
            return await refuse(
                interaction, f"You already voted for **{earlier}**; votes cannot be changed."
            )
        votes[voter] = index
        self.result = self.tally()
        await self.edit(interaction, content=self.render())
        return False  # votes do not extend the poll: the TTL is its duration
