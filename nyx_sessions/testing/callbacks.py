"""Interaction callbacks and the interaction webhook, as Discord answers them.

The first answer to an interaction must come within the ack window (else 404 10062
"Unknown interaction"); a second one gets 400 40060 "Interaction has already been
acknowledged.". The token then serves ``@original`` and followups for 15 minutes, but
only once the interaction was acknowledged (else 404 10015 "Unknown Webhook"); after
that, 401 50027 "Invalid Webhook Token".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from aiohttp import web

from nyx_sessions.testing.records import RecordedResponse
from nyx_sessions.testing.rest import Call, DiscordError, json_response, unknown_message

if TYPE_CHECKING:
    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.records import InteractionResult, OfflineMessage, RecordedFile
    from nyx_sessions.testing.world import OfflineWorld

__all__ = ["TOKEN_LIFETIME", "InteractionEndpoints"]

TOKEN_LIFETIME = 15 * 60.0
"""Seconds that an interaction token works for followups and ``@original``."""

_EPHEMERAL = 1 << 6
_LOADING = 1 << 7
_COMMAND_MESSAGE_TYPES = {1: 20, 2: 23, 3: 23}  # chat input, user and message commands

# Callback types that Discord accepts for each interaction type.
_ALLOWED_CALLBACKS = {
    discord.InteractionType.ping.value: {1},
    discord.InteractionType.application_command.value: {4, 5, 9, 12},
    discord.InteractionType.component.value: {4, 5, 6, 7, 9},
    discord.InteractionType.autocomplete.value: {8},
    discord.InteractionType.modal_submit.value: {4, 5, 6, 7},
}


def _unknown_interaction() -> DiscordError:
    return DiscordError(404, 10062, "Unknown interaction")


class InteractionEndpoints:
    """The handlers of ``/interactions/.../callback`` and ``/webhooks/{app id}/{token}``."""

    def __init__(self, world: OfflineWorld, *, ack_window: float) -> None:
        self.world = world
        self.ack_window = ack_window
        self.callback_delay = 0.0
        """Seconds the callback's reply takes after it was taken, as over a slow network."""

    def __repr__(self) -> str:
        return f"<InteractionEndpoints ack_window={self.ack_window}>"

    async def callback(self, call: Call) -> web.Response:
        """Acknowledge an interaction: ``POST /interactions/{id}/{token}/callback``."""
        world = self.world
        result = world.interactions.get(int(call.match["webhook_id"]))
        if result is None or result.token != call.match["webhook_token"]:
            raise _unknown_interaction()
        if result.response is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        now = world.clock.now()
        if now - result.fed_at > self.ack_window:
            raise _unknown_interaction()
        body: Payload = call.body or {}
        callback_type = int(body.get("type", 0))
        interaction_type = int(result.payload["type"])
        if callback_type not in _ALLOWED_CALLBACKS.get(interaction_type, set()):
            raise DiscordError(400, 50035, f"Invalid Form Body: callback type {callback_type}")
        data: Payload | None = body.get("data")
        message = self._answer(result, callback_type, data or {}, call.files)
        result._acknowledge(
            RecordedResponse(discord.InteractionResponseType(callback_type), data, now)
        )
        if self.callback_delay > 0:
            await asyncio.sleep(self.callback_delay)
        if call.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        ephemeral = bool(message is not None and message.ephemeral and callback_type in (4, 5))
        answer: Payload = {
            "interaction": {
                "id": str(result.id),
                "type": interaction_type,
                "response_message_loading": callback_type == 5,
                "response_message_ephemeral": ephemeral,
            }
        }
        if message is not None and callback_type in (4, 5, 7):
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"] = {"type": callback_type, "message": message.payload}
        return json_response(answer)

    def _answer(
        self,
        result: InteractionResult,
        callback_type: int,
        data: Payload,
        files: list[RecordedFile],
    ) -> OfflineMessage | None:
        world = self.world
        channel_id = int(result.payload["channel_id"])
        if callback_type in (4, 5):
            command_type = result.payload.get("data", {}).get("type", 1)
            message_type = 0
            if result.payload["type"] == discord.InteractionType.application_command.value:
                message_type = _COMMAND_MESSAGE_TYPES.get(command_type, 0)
            if callback_type == 5:
                data = {"flags": int(data.get("flags") or 0) & _EPHEMERAL}
            result.message = world.create_message(
                channel_id,
                data,
                files,
                message_type=message_type,
                interaction=result,
                extra_flags=_LOADING if callback_type == 5 else 0,
            )
        elif callback_type == 6:
            # Also fine for a modal submitted from a command: it just closes the modal.
            result.message = result.source_message
        elif callback_type == 7:
            source = result.source_message
            if source is None or source.deleted:
                raise DiscordError(400, 50035, "Invalid Form Body: the interaction has no message")
            world.edit_message(source, data, files)
            result.message = source
        return result.message

    def _interaction(self, call: Call) -> InteractionResult:
        world = self.world
        if call.match["webhook_id"] != str(world.application_id):
            raise DiscordError(404, 10015, "Unknown Webhook")
        result = world.tokens.get(call.match["webhook_token"])
        if result is None or world.clock.now() - result.fed_at > TOKEN_LIFETIME:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if result.response is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return result

    def _message(self, call: Call) -> tuple[InteractionResult, OfflineMessage]:
        result = self._interaction(call)
        message_id = call.match.get("message_id", "@original")
        if message_id == "@original":
            message = result.message
        else:
            owned = [m for m in (result.message, *result.followups) if m is not None]
            message = next((m for m in owned if str(m.id) == message_id), None)
        if message is None or message.deleted:
            raise unknown_message()
        return result, message

    async def get_message(self, call: Call) -> web.Response:
        """Answer ``@original`` or a followup."""
        return json_response(self._message(call)[1].payload)

    async def edit_message(self, call: Call) -> web.Response:
        """Edit ``@original`` or a followup."""
        _, message = self._message(call)
        self.world.edit_message(message, call.body or {}, call.files)
        return json_response(message.payload)

    async def delete_message(self, call: Call) -> web.Response:
        """Delete ``@original`` or a followup."""
        _, message = self._message(call)
        message.deleted = True
        return web.Response(status=204)

    async def followup(self, call: Call) -> web.Response:
        """Send a followup message: ``POST /webhooks/{app id}/{token}``."""
        result = self._interaction(call)
        body: Payload = call.body or {}
        original = result.message
        loading = original is not None and bool(int(original.payload["flags"]) & _LOADING)
        if loading and original is not None and not original.deleted:
            # After a "thinking" deferral, Discord turns the first followup into the
            # deferred message itself: it edits @original instead of posting anew.
            self.world.edit_message(original, body, call.files)
            message = original
        else:
            message = self.world.create_message(
                int(result.payload["channel_id"]), body, call.files, interaction=result
            )
            result.followups.append(message)
        if call.query.get("wait") in ("1", "true", "True"):
            return json_response(message.payload)
        return web.Response(status=204)
