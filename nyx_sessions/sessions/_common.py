"""What the ready-made sessions share: refusing an interaction, tidying a message."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from ..responders import answer_ephemeral

if TYPE_CHECKING:
    from ..session import AbstractSession

__all__ = ["edit_by_id", "refuse"]

_log = logging.getLogger("nyx_sessions")


async def refuse(interaction: discord.Interaction[Any], text: str) -> bool:
    """Answer ``interaction`` with ``text`` only its user sees; return False (no refresh)."""
    await answer_ephemeral(interaction, text)
    return False


async def edit_by_id(session: AbstractSession[Any], **fields: Any) -> bool:
    """Edit the session's message by channel and message id; never raises for Discord.

    Works after the 15-minute interaction token is gone and after a restart. A message
    that was deleted, or any other refusal by Discord, is logged.

    Returns
    -------
    bool
        True when the message was edited.
    """
    message = session.message
    if message is None:
        _log.debug("Session %s has no known message to tidy", session.id)
        return False
    try:
        await message.edit(**fields)
    except discord.NotFound:
        _log.info("Session %s: its message %s is gone; nothing to tidy", session.id, message.id)
    except discord.HTTPException as error:
        _log.warning("Session %s: could not tidy message %s: %s", session.id, message.id, error)
    else:
        return True
    return False
