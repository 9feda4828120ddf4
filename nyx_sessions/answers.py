"""Answering an interaction the same way whether or not it was acknowledged already.

The manager defers an interaction whose handler runs close to Discord's 3-second limit.
After that, ``interaction.response.edit_message`` raises
:class:`discord.InteractionResponded`; the message must be edited with
``edit_original_response`` and new messages sent as follow-ups. :func:`edit` and
:func:`reply` pick the right call, so a handler reads the same either way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from discord.ext import commands

__all__ = ["edit", "explain_already_answered", "reply"]

_log = logging.getLogger("nyx_sessions")

_DEFERRALS = frozenset(
    {
        discord.InteractionResponseType.deferred_message_update,
        discord.InteractionResponseType.deferred_channel_message,
    }
)


async def edit(interaction: discord.Interaction[Any], **fields: Any) -> None:
    """Edit the message that ``interaction``'s component is on (or its original response).

    ``interaction.response.edit_message`` while the interaction is unanswered,
    ``interaction.edit_original_response`` once it was acknowledged (by a deferral of
    the manager's, for one).
    """
    if interaction.response.is_done():
        await interaction.edit_original_response(**fields)
    else:
        await interaction.response.edit_message(**fields)


async def reply(
    interaction: discord.Interaction[Any] | None,
    *args: Any,
    context: commands.Context[Any] | None = None,
    channel: discord.abc.Messageable | None = None,
    **fields: Any,
) -> discord.Message | None:
    """Send a message in answer to ``interaction``, or through ``context`` or ``channel``.

    ``interaction.response.send_message`` while the interaction is unanswered, a
    follow-up once it was acknowledged. Without an interaction, ``context.send`` (a
    prefix command) or ``channel.send``.

    Returns
    -------
    discord.Message | None
        The message sent, when Discord returns it (follow-ups and sends do; an
        interaction response gives None: read it with ``original_response()``).
    """
    if interaction is not None:
        if interaction.response.is_done():
            return await interaction.followup.send(*args, wait=True, **fields)
        await interaction.response.send_message(*args, **fields)
        return None
    if context is not None:
        return await context.send(*args, **fields)
    if channel is not None:
        return await channel.send(*args, **fields)
    raise ValueError("reply needs an interaction, a command context or a channel")


def explain_already_answered(
    session_id: str, session_type: str, interaction: discord.Interaction[Any]
) -> None:
    """Log why a handler met :class:`discord.InteractionResponded` and what to call instead."""
    answered = interaction.response.type
    if answered in _DEFERRALS:
        _log.error(
            "Session %s (%s): the handler answered interaction %s, which was deferred "
            "already (%s; the manager defers an interaction whose handler runs close to "
            "Discord's 3-second limit). Use self.edit(interaction, ...) and "
            "self.reply(interaction, ...), which work before and after a deferral.",
            session_id,
            session_type,
            interaction.id,
            answered.name if answered is not None else "unknown",
        )
    else:
        _log.error(
            "Session %s (%s): the handler answered interaction %s twice; an interaction "
            "takes one response. Use self.reply(interaction, ...) for further messages.",
            session_id,
            session_type,
            interaction.id,
        )
