"""The REST side of the offline Discord: an aiohttp app on 127.0.0.1 and Discord's answers.

It serves what a bot does with interactions and messages: login, interaction
callbacks (with ``?with_response=1`` as discord.py 2.7 asks), the interaction webhook
(``@original`` and followups), channel messages, DM channels and command sync. Every
request is recorded in :attr:`OfflineWorld.requests`; routes it does not know answer
404 with a message that names them.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from nyx_sessions.testing.callbacks import InteractionEndpoints
from nyx_sessions.testing.payloads import app_info_payload, user_payload
from nyx_sessions.testing.records import RecordedRequest
from nyx_sessions.testing.rest import (
    API_PREFIX,
    Call,
    DiscordError,
    Handler,
    json_response,
    read_body,
    unknown_message,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.records import OfflineMessage
    from nyx_sessions.testing.world import OfflineWorld

_log = logging.getLogger(__name__)

__all__ = ["OfflineServer"]

_EPHEMERAL = 1 << 6


class OfflineServer:
    """The aiohttp app that answers the bot's REST calls from an :class:`OfflineWorld`."""

    def __init__(self, world: OfflineWorld, *, ack_window: float) -> None:
        self.world = world
        self.interactions = InteractionEndpoints(world, ack_window=ack_window)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1 and return the API base URL."""
        self._runner = web.AppRunner(self._build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}{API_PREFIX}"
        return self.base_url

    async def close(self) -> None:
        """Stop listening; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _build_app(self) -> web.Application:
        hook, hooks = "/webhooks/{webhook_id}/{webhook_token}", self.interactions
        commands = "/applications/{application_id}"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("POST", "/users/@me/channels", self._create_dm),
            (
                "POST",
                "/interactions/{webhook_id}/{webhook_token}/callback",
                hooks.callback,
            ),
            # @original first: aiohttp tries routes in order and {message_id} matches it too.
            ("GET", hook + "/messages/@original", hooks.get_message),
            ("PATCH", hook + "/messages/@original", hooks.edit_message),
            ("DELETE", hook + "/messages/@original", hooks.delete_message),
            ("GET", hook + "/messages/{message_id}", hooks.get_message),
            ("PATCH", hook + "/messages/{message_id}", hooks.edit_message),
            ("DELETE", hook + "/messages/{message_id}", hooks.delete_message),
            ("POST", hook, hooks.followup),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("GET", "/channels/{channel_id}/messages", self._list_messages),
            ("POST", "/channels/{channel_id}/messages", self._send_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("GET", commands + "/commands", self._get_commands),
            ("PUT", commands + "/commands", self._put_commands),
            ("GET", commands + "/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", commands + "/guilds/{guild_id}/commands", self._put_commands),
        ]
        app = web.Application()
        for method, path, handler in routes:
            app.router.add_route(method, API_PREFIX + path, self._recorded(handler, path))
        app.router.add_route("*", "/{tail:.*}", self._recorded(self._unknown_route, None))
        return app

    def _recorded(
        self, handler: Handler, route: str | None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        world = self.world

        async def handle(request: web.Request) -> web.Response:
            body, files = await read_body(request)
            recorded = RecordedRequest(
                method=request.method,
                path=request.path.removeprefix(API_PREFIX),
                route=route,
                query=dict(request.query),
                json=body,
                files=files,
                time=world.clock.now(),
            )
            try:
                response = await handler(Call(request, body, files))
            except DiscordError as error:
                response = json_response(
                    {"code": error.code, "message": error.message}, error.status
                )
            except Exception as error:
                # A 5xx would make discord.py retry with sleeps of 1, 3, 5 and 7 seconds.
                _log.exception("the offline Discord failed on %s %s", request.method, request.path)
                message = f"the offline Discord failed: {error!r}"
                response = json_response({"code": 0, "message": message}, 400)
            recorded.status = response.status
            if response.content_type == "application/json" and response.text:
                recorded.response = json.loads(response.text)
            world.record_request(recorded)
            return response

        return handle

    # -- login -----------------------------------------------------------------

    async def _get_me(self, call: Call) -> web.Response:
        data = user_payload(self.world.bot)
        data.update(verified=True, mfa_enabled=False, flags=0, locale="en-US")
        return json_response(data)

    async def _get_application(self, call: Call) -> web.Response:
        world = self.world
        return json_response(
            app_info_payload(application_id=world.application_id, bot=world.bot, owner=world.owner)
        )

    async def _create_dm(self, call: Call) -> web.Response:
        user = self.world.users.get(int(call.body["recipient_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(self.world.channel_payload(self.world.dm_channel(user)))

    async def _unknown_route(self, call: Call) -> web.Response:
        message = f"the offline Discord has no route for {call.request.method} {call.request.path}"
        raise DiscordError(404, 0, message)

    # -- channels and their messages -------------------------------------------

    def _channel_id(self, call: Call) -> int:
        channel_id = int(call.match["channel_id"])
        if channel_id not in self.world.channels:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel_id

    def _channel_message(self, call: Call) -> OfflineMessage:
        channel_id = self._channel_id(call)
        message = self.world.messages.get(int(call.match["message_id"]))
        # Ephemeral messages exist only for the interaction webhook, not in the channel.
        if message is None or message.deleted or message.ephemeral:
            raise unknown_message()
        if message.channel_id != channel_id:
            raise unknown_message()
        return message

    async def _get_channel(self, call: Call) -> web.Response:
        channel = self.world.channels[self._channel_id(call)]
        return json_response(self.world.channel_payload(channel))

    async def _list_messages(self, call: Call) -> web.Response:
        channel_id = self._channel_id(call)
        limit = int(call.query.get("limit", "50"))
        visible = [
            m.payload
            for m in reversed(self.world.messages.values())
            if m.channel_id == channel_id and not m.deleted and not m.ephemeral
        ]
        return json_response(visible[:limit])

    async def _send_message(self, call: Call) -> web.Response:
        body: Payload = call.body or {}
        empty = not any(body.get(key) for key in ("content", "embeds", "components", "poll"))
        if empty and not call.files:
            raise DiscordError(400, 50006, "Cannot send an empty message")
        message_type = 19 if body.get("message_reference") else 0
        flags = int(body.get("flags") or 0) & ~_EPHEMERAL  # only interactions whisper
        message = self.world.create_message(
            self._channel_id(call),
            {**body, "flags": flags},
            call.files,
            message_type=message_type,
        )
        return json_response(message.payload)

    async def _get_message(self, call: Call) -> web.Response:
        return json_response(self._channel_message(call).payload)

    async def _edit_message(self, call: Call) -> web.Response:
        message = self._channel_message(call)
        self.world.edit_message(message, call.body or {}, call.files)
        return json_response(message.payload)

    async def _delete_message(self, call: Call) -> web.Response:
        self._channel_message(call).deleted = True
        return web.Response(status=204)

    # -- application commands --------------------------------------------------

    async def _get_commands(self, call: Call) -> web.Response:
        guild_id = call.match.get("guild_id")
        return json_response(self.world.commands.get(int(guild_id) if guild_id else None, []))

    async def _put_commands(self, call: Call) -> web.Response:
        world = self.world
        guild_id = call.match.get("guild_id")
        commands = []
        for command in call.body or []:
            stored = {
                **command,
                "id": str(world.new_id()),
                "application_id": str(world.application_id),
                "version": str(world.new_id()),
            }
            if guild_id:
                stored["guild_id"] = guild_id
            commands.append(stored)
        world.commands[int(guild_id) if guild_id else None] = commands
        return json_response(commands)
