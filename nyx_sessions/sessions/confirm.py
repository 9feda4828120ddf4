"""ConfirmSession: a yes/no question for the user who asked for it."""

from __future__ import annotations

from typing import Any, ClassVar

import discord

from ..actions import action
from ..end import EndCode
from ..filters import OwnerOnly
from ..session import AbstractSession
from ._common import edit_by_id

__all__ = ["ConfirmSession"]


class ConfirmSession(AbstractSession[bool]):
    """Ask a yes/no question; the result is True (confirmed), False (cancelled) or None.

    Only the owner may answer. After the answer both buttons stay on the message,
    disabled, under a line that says what was decided. When nobody answers in time
    (the result is then None) or the session ends otherwise, the message is edited by
    id the same way, so this works long after the interaction token has expired and
    after a restart.

    Parameters
    ----------
    interaction:
        The interaction that starts the session; the question is its response.
    prompt:
        The question.
    confirm_label, cancel_label:
        The labels of the two buttons.
    danger:
        Show the confirm button in red (for destructive actions); green otherwise.
    session_id:
        The session's id; random by default.

    Examples
    --------
    >>> session = ConfirmSession(interaction, "Delete?", confirm_label="Delete")  # doctest: +SKIP
    >>> await manager.start(session)  # doctest: +SKIP
    >>> if (await session.end_promise).result:  # doctest: +SKIP
    ...     ...
    """

    session_type = "nyx.confirm"
    ttl: float | None = 60.0
    update_filter = OwnerOnly()

    confirmed_text: ClassVar[str] = "Confirmed."
    """The line added under the question when the user confirms."""
    cancelled_text: ClassVar[str] = "Cancelled."
    """The line added under the question when the user cancels."""
    expired_text: ClassVar[str] = "No answer in time."
    """The line added under the question when the session expires."""
    closed_text: ClassVar[str] = "This question was closed."
    """The line added under the question when the session ends without an answer."""
    invalid_text: ClassVar[str] = "That button is no longer valid."
    """The ephemeral answer to a custom id this session does not know."""
    unknown_action_message = invalid_text

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        prompt: str = "Are you sure?",
        *,
        confirm_label: str = "Yes",
        cancel_label: str = "No",
        danger: bool = False,
        session_id: str | None = None,
    ) -> None:
        super().__init__(interaction, session_id=session_id)
        self.data.update(
            prompt=prompt, confirm_label=confirm_label, cancel_label=cancel_label, danger=danger
        )

    def build_view(self, *, disabled: bool = False) -> discord.ui.View:
        """Return the two buttons, enabled or disabled."""
        confirm_style = (
            discord.ButtonStyle.danger if self.data["danger"] else (discord.ButtonStyle.success)
        )
        view = discord.ui.View(timeout=None)
        for token, label, style in (
            ("yes", self.data["confirm_label"], confirm_style),
            ("no", self.data["cancel_label"], discord.ButtonStyle.secondary),
        ):
            view.add_item(
                discord.ui.Button(
                    label=label,
                    style=style,
                    disabled=disabled,
                    custom_id=self.action_id(token),
                )
            )
        return view

    def _closing_content(self, line: str) -> str:
        return f"{self.data['prompt']}\n\n*{line}*"

    async def start(self) -> None:
        """Send the question with its two buttons."""
        await self.reply(self.start_interaction, self.data["prompt"], view=self.build_view())

    @action("yes")
    async def confirm(self, interaction: discord.Interaction[Any]) -> bool:
        """Record a yes, disable the buttons and end."""
        return await self._answer(interaction, True)

    @action("no")
    async def cancel(self, interaction: discord.Interaction[Any]) -> bool:
        """Record a no, disable the buttons and end."""
        return await self._answer(interaction, False)

    async def _answer(self, interaction: discord.Interaction[Any], answer: bool) -> bool:
        line = self.confirmed_text if answer else self.cancelled_text
        # Inside a handler, stop() only records the end; it runs once this returns, also
        # if the edit below fails (end() then tidies by message id).
        await self.stop(result=answer)
        await self.edit(
            interaction, content=self._closing_content(line), view=self.build_view(disabled=True)
        )
        self.data["tidied"] = True
        return False

    async def end(self) -> None:
        """Disable the buttons when the session ends without an answer."""
        if self.data.get("tidied"):
            return
        line = self.expired_text if self.end_code is EndCode.EXPIRED else self.closed_text
        await edit_by_id(
            self, content=self._closing_content(line), view=self.build_view(disabled=True)
        )
