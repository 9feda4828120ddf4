"""Messages that users post, for prefix commands (``!counter``) and ``on_message`` bots.

Discord delivers a user's message as a gateway ``MESSAGE_CREATE``; the offline Discord
builds that payload and hands it to discord.py's own parser, so that a
:class:`~discord.ext.commands.Bot` runs its prefix and hybrid commands as it would live.
Discord leaves the content out for a bot without the message content intent (unless it
is mentioned); so does the offline Discord, and it says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from nyx_sessions.testing.payloads import message_payload

if TYPE_CHECKING:
    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.records import OfflineChannel, OfflineUser, RecordedRequest
    from nyx_sessions.testing.world import OfflineWorld

__all__ = ["deliver_message", "message_create_payload"]


def message_create_payload(
    world: OfflineWorld, user: OfflineUser, channel: OfflineChannel, content: str
) -> Payload:
    """Build the ``MESSAGE_CREATE`` payload of ``user`` posting ``content`` in ``channel``."""
    payload = message_payload(
        message_id=world.new_id(),
        channel_id=channel.id,
        author=user,
        body={"content": content},
    )
    if channel.guild_id is not None:
        payload["guild_id"] = str(channel.guild_id)
        payload["member"] = world.member_payload(user, with_user=False)
    return payload


def _check_content_intent(client: discord.Client, content: str) -> None:
    bot = client.user
    mentioned = bot is not None and f"<@{bot.id}>" in content
    if not client.intents.message_content and not mentioned:
        raise ValueError(
            "the client lacks the message content intent: Discord would deliver this "
            "message without its content, so no prefix command would run. Make the bot "
            "with intents.message_content = True"
        )


async def deliver_message(
    world: OfflineWorld,
    client: discord.Client,
    payload: Payload,
    timeout: float,  # noqa: ASYNC109
) -> RecordedRequest | None:
    """Hand ``payload`` to ``client`` and wait until it has been handled.

    Handled means: the command it invoked completed or failed, or the bot posted a
    message in the channel (a command that then waits on a session, say). For a client
    that is not a :class:`~discord.ext.commands.Bot`, only the post is waited for.

    Returns
    -------
    RecordedRequest | None
        The bot's first message post in the channel, or None when it posted none.

    Raises
    ------
    discord.ext.commands.CommandError
        The command failed (after the bot's own error handlers ran).
    """
    _check_content_intent(client, str(payload.get("content") or ""))
    message_id = int(payload["id"])
    earlier = {id(request) for request in world.requests}
    path = f"/channels/{payload['channel_id']}/messages"

    def posted(request: RecordedRequest) -> bool:
        return id(request) not in earlier and request.method == "POST" and request.path == path

    def about_this(ctx: commands.Context[Any], *_: Any) -> bool:
        return ctx.message.id == message_id

    waiters: dict[str, asyncio.Task[Any]] = {
        "posted": asyncio.ensure_future(world.wait_for_request(posted, timeout))
    }
    if isinstance(client, commands.Bot):
        for event in ("command_completion", "command_error"):
            waiters[event] = asyncio.ensure_future(
                client.wait_for(event, check=about_this, timeout=timeout)
            )
    client._connection.parsers["MESSAGE_CREATE"](payload)
    try:
        await asyncio.wait(waiters.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters.values():
            waiter.cancel()
        for waiter in waiters.values():
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await waiter
    error_waiter = waiters.get("command_error")
    if error_waiter is not None and error_waiter.done() and not error_waiter.cancelled():
        failure = error_waiter.exception()
        if failure is None:
            _, error = error_waiter.result()
            raise error
    return next((request for request in world.requests if posted(request)), None)
