"""What users see when the manager answers for a session: expired, refused, failed, busy."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Responder", "answer_ephemeral", "is_already_acknowledged"]

_log = logging.getLogger("nyx_sessions")

# Discord's error codes for an interaction that was already answered, and for one that
# can no longer be answered (its 3-second window passed, or its token is gone).
_ALREADY_ACKNOWLEDGED = 40060
_UNKNOWN_INTERACTION = 10062


def is_already_acknowledged(error: BaseException) -> bool:
    """Return True when ``error`` says the interaction was answered already."""
    return isinstance(error, discord.InteractionResponded) or (
        isinstance(error, discord.HTTPException) and error.code == _ALREADY_ACKNOWLEDGED
    )


async def answer_ephemeral(interaction: discord.Interaction[Any], text: str) -> None:
    """Reply with ``text`` only the user sees: a response, or a follow-up if answered."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as error:
        if error.code == _UNKNOWN_INTERACTION:
            _log.warning("Interaction %s expired before it could be answered", interaction.id)
        else:
            _log.warning("Could not answer interaction %s: %s", interaction.id, error)
    except discord.InteractionResponded:
        await answer_ephemeral(interaction, text)


class Responder:
    """The replies the manager sends on a session's behalf.

    Override the methods to change how they look (embeds, translations); pass texts to
    change only the words.

    Parameters
    ----------
    missing:
        For an interaction whose session is unknown, ended or expired.
    filtered:
        For an interaction a filter refused, when the filter gives no text of its own.
    failed:
        For an interaction whose handler raised before answering.
    unavailable:
        For an interaction that could not be served now (store down, session busy).
    broken:
        For an interaction whose stored session cannot be restored.
    """

    __slots__ = ("broken_text", "failed_text", "filtered_text", "missing_text", "unavailable_text")

    def __init__(
        self,
        *,
        missing: str = "This has expired. Start it again to continue.",
        filtered: str = "You can't use this.",
        failed: str = "Something went wrong while handling that. Please try again.",
        unavailable: str = "That couldn't be handled right now. Please try again in a moment.",
        broken: str = "This can no longer be used. Please start it again.",
    ) -> None:
        self.missing_text = missing
        self.filtered_text = filtered
        self.failed_text = failed
        self.unavailable_text = unavailable
        self.broken_text = broken

    async def missing(self, interaction: discord.Interaction[Any], session_id: str) -> None:
        """Answer an interaction for an unknown, ended or expired session."""
        await answer_ephemeral(interaction, self.missing_text)

    async def filtered(
        self,
        interaction: discord.Interaction[Any],
        session: Session[Any],
        message: str | None,
    ) -> None:
        """Answer an interaction that a start or update filter refused."""
        await answer_ephemeral(interaction, message or self.filtered_text)

    async def failed(
        self, interaction: discord.Interaction[Any], session: Session[Any] | None, error: Exception
    ) -> None:
        """Answer an interaction whose handler raised."""
        await answer_ephemeral(interaction, self.failed_text)

    async def unavailable(self, interaction: discord.Interaction[Any], error: Exception) -> None:
        """Answer an interaction that cannot be served now; the user may retry."""
        await answer_ephemeral(interaction, self.unavailable_text)

    async def broken(
        self, interaction: discord.Interaction[Any], session_id: str, error: Exception
    ) -> None:
        """Answer an interaction whose stored session cannot be restored."""
        await answer_ephemeral(interaction, self.broken_text)

    async def acknowledge(self, interaction: discord.Interaction[Any]) -> None:
        """Acknowledge an interaction that a handler left unanswered (a silent defer)."""
        try:
            await interaction.response.defer()
        except discord.HTTPException as error:
            if not is_already_acknowledged(error):
                _log.warning("Could not acknowledge interaction %s: %s", interaction.id, error)
        except discord.InteractionResponded:
            pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
