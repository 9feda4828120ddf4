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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from aiohttp import BodyPartReader, hdrs, web

from nyx_sessions.testing.records import RecordedFile, RecordedRequest, RecordedResponse

if TYPE_CHECKING:
    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.records import InteractionResult, OfflineMessage
    from nyx_sessions.testing.world import OfflineWorld

_log = logging.getLogger(__name__)

__all__ = ["API_PREFIX", "DiscordError", "OfflineServer"]

API_PREFIX = "/api/v10"
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


class _Call:
    """One request with its body already read."""

    __slots__ = ("body", "files", "match", "query", "request")

    def __init__(self, request: web.Request, body: Any, files: list[RecordedFile]) -> None:
        self.request = request
        self.body = body
        self.files = files
        self.match = request.match_info
        self.query = request.query


_Handler = Callable[[_Call], Awaitable[web.Response]]


class DiscordError(Exception):
    """An error answer, in Discord's JSON shape ``{"code": ..., "message": ...}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _unknown_interaction() -> DiscordError:
    return DiscordError(404, 10062, "Unknown interaction")


def _unknown_message() -> DiscordError:
    return DiscordError(404, 10008, "Unknown Message")


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py decodes JSON only when the content type is exactly "application/json",
    # so no "; charset=utf-8" as web.json_response would add.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


class OfflineServer:
    """The aiohttp app that answers the bot's REST calls from an :class:`OfflineWorld`."""

    def __init__(self, world: OfflineWorld, *, ack_window: float) -> None:
        self.world = world
        self.ack_window = ack_window
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
        hook = "/webhooks/{webhook_id}/{webhook_token}"
        commands = "/applications/{application_id}"
        routes: list[tuple[str, str, _Handler]] = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("POST", "/users/@me/channels", self._create_dm),
            ("POST", "/interactions/{webhook_id}/{webhook_token}/callback", self._callback),
            # @original first: aiohttp tries routes in order and {message_id} matches it too.
            ("GET", hook + "/messages/@original", self._get_hook),
            ("PATCH", hook + "/messages/@original", self._edit_hook),
            ("DELETE", hook + "/messages/@original", self._delete_hook),
            ("GET", hook + "/messages/{message_id}", self._get_hook),
            ("PATCH", hook + "/messages/{message_id}", self._edit_hook),
            ("DELETE", hook + "/messages/{message_id}", self._delete_hook),
            ("POST", hook, self._followup),
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
        self, handler: _Handler, route: str | None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        world = self.world

        async def handle(request: web.Request) -> web.Response:
            body, files = await _read_body(request)
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
                response = await handler(_Call(request, body, files))
            except DiscordError as error:
                response = _json({"code": error.code, "message": error.message}, error.status)
            except Exception as error:
                # A 5xx would make discord.py retry with sleeps of 1, 3, 5 and 7 seconds.
                _log.exception("the offline Discord failed on %s %s", request.method, request.path)
                message = f"the offline Discord failed: {error!r}"
                response = _json({"code": 0, "message": message}, 400)
            recorded.status = response.status
            if response.content_type == "application/json" and response.text:
                recorded.response = json.loads(response.text)
            world.record_request(recorded)
            return response

        return handle

    # -- login -----------------------------------------------------------------

    async def _get_me(self, call: _Call) -> web.Response:
        from nyx_sessions.testing.payloads import user_payload

        data = user_payload(self.world.bot)
        data.update(verified=True, mfa_enabled=False, flags=0, locale="en-US")
        return _json(data)

    async def _get_application(self, call: _Call) -> web.Response:
        from nyx_sessions.testing.payloads import app_info_payload

        world = self.world
        return _json(
            app_info_payload(application_id=world.application_id, bot=world.bot, owner=world.owner)
        )

    async def _create_dm(self, call: _Call) -> web.Response:
        user = self.world.users.get(int(call.body["recipient_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return _json(self.world.channel_payload(self.world.dm_channel(user)))

    async def _unknown_route(self, call: _Call) -> web.Response:
        message = f"the offline Discord has no route for {call.request.method} {call.request.path}"
        raise DiscordError(404, 0, message)

    # -- interaction callbacks -------------------------------------------------

    async def _callback(self, call: _Call) -> web.Response:
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
        return _json(answer)

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
        elif callback_type in (6, 7):
            source = result.source_message
            if source is None or source.deleted:
                raise DiscordError(400, 50035, "Invalid Form Body: the interaction has no message")
            if callback_type == 7:
                world.edit_message(source, data, files)
            result.message = source
        return result.message

    # -- the interaction webhook -----------------------------------------------

    def _hook_interaction(self, call: _Call) -> InteractionResult:
        world = self.world
        if call.match["webhook_id"] != str(world.application_id):
            raise DiscordError(404, 10015, "Unknown Webhook")
        token = call.match["webhook_token"]
        result = next((r for r in world.interactions.values() if r.token == token), None)
        if result is None or world.clock.now() - result.fed_at > TOKEN_LIFETIME:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if result.response is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return result

    def _hook_message(self, call: _Call) -> tuple[InteractionResult, OfflineMessage]:
        result = self._hook_interaction(call)
        message_id = call.match.get("message_id", "@original")
        if message_id == "@original":
            message = result.message
        else:
            owned = [m for m in (result.message, *result.followups) if m is not None]
            message = next((m for m in owned if str(m.id) == message_id), None)
        if message is None or message.deleted:
            raise _unknown_message()
        return result, message

    async def _get_hook(self, call: _Call) -> web.Response:
        return _json(self._hook_message(call)[1].payload)

    async def _edit_hook(self, call: _Call) -> web.Response:
        _, message = self._hook_message(call)
        self.world.edit_message(message, call.body or {}, call.files)
        return _json(message.payload)

    async def _delete_hook(self, call: _Call) -> web.Response:
        _, message = self._hook_message(call)
        message.deleted = True
        return web.Response(status=204)

    async def _followup(self, call: _Call) -> web.Response:
        result = self._hook_interaction(call)
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
            return _json(message.payload)
        return web.Response(status=204)

    # -- channels and their messages -------------------------------------------

    def _channel_id(self, call: _Call) -> int:
        channel_id = int(call.match["channel_id"])
        if channel_id not in self.world.channels:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel_id

    def _channel_message(self, call: _Call) -> OfflineMessage:
        channel_id = self._channel_id(call)
        message = self.world.messages.get(int(call.match["message_id"]))
        # Ephemeral messages exist only for the interaction webhook, not in the channel.
        if message is None or message.deleted or message.ephemeral:
            raise _unknown_message()
        if message.channel_id != channel_id:
            raise _unknown_message()
        return message

    async def _get_channel(self, call: _Call) -> web.Response:
        channel = self.world.channels[self._channel_id(call)]
        return _json(self.world.channel_payload(channel))

    async def _list_messages(self, call: _Call) -> web.Response:
        channel_id = self._channel_id(call)
        limit = int(call.query.get("limit", "50"))
        visible = [
            m.payload
            for m in reversed(self.world.messages.values())
            if m.channel_id == channel_id and not m.deleted and not m.ephemeral
        ]
        return _json(visible[:limit])

    async def _send_message(self, call: _Call) -> web.Response:
        body: Payload = call.body or {}
        empty = not any(body.get(key) for key in ("content", "embeds", "components", "poll"))
        if empty and not call.files:
            raise DiscordError(400, 50006, "Cannot send an empty message")
        message_type = 19 if body.get("message_reference") else 0
        flags = int(body.get("flags") or 0) & ~_EPHEMERAL
        message = self.world.create_message(
            self._channel_id(call),
            {**body, "flags": flags},
            call.files,
            message_type=message_type,
        )
        return _json(message.payload)

    async def _get_message(self, call: _Call) -> web.Response:
        return _json(self._channel_message(call).payload)

    async def _edit_message(self, call: _Call) -> web.Response:
        message = self._channel_message(call)
        self.world.edit_message(message, call.body or {}, call.files)
        return _json(message.payload)

    async def _delete_message(self, call: _Call) -> web.Response:
        self._channel_message(call).deleted = True
        return web.Response(status=204)

    # -- application commands --------------------------------------------------

    async def _get_commands(self, call: _Call) -> web.Response:
        guild_id = call.match.get("guild_id")
        return _json(self.world.commands.get(int(guild_id) if guild_id else None, []))

    async def _put_commands(self, call: _Call) -> web.Response:
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
        return _json(commands)


async def _read_body(request: web.Request) -> tuple[Any, list[RecordedFile]]:
    """Return the JSON body (``payload_json`` of a multipart one) and the uploaded files."""
    if not request.body_exists:
        return None, []
    if request.content_type.startswith("multipart/"):
        body: Any = None
        files: list[RecordedFile] = []
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                content_type = part.headers.get(hdrs.CONTENT_TYPE)
                data = await part.read(decode=False)
                files.append(RecordedFile(part.name or "", part.filename, content_type, data))
        return body, files
    text = await request.text()
    if request.content_type == "application/json" and text:
        return json.loads(text), []
    return text or None, []
