"""The pieces every REST answer of the offline Discord is made of."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from nyx_sessions.testing.records import RecordedFile

__all__ = [
    "API_PREFIX",
    "Call",
    "DiscordError",
    "Handler",
    "json_response",
    "read_body",
    "unknown_message",
]

API_PREFIX = "/api/v10"
"""The path of Discord's API version 10; ``Route.BASE`` ends with it."""


class Call:
    """One request, with its body already read."""

    __slots__ = ("body", "files", "match", "query", "request")

    def __init__(self, request: web.Request, body: Any, files: list[RecordedFile]) -> None:
        self.request = request
        self.body = body
        self.files = files
        self.match = request.match_info
        self.query = request.query

    def __repr__(self) -> str:
        return f"<Call {self.request.method} {self.request.path}>"


Handler = Callable[[Call], Awaitable[web.Response]]
"""A route handler of the offline Discord."""


class DiscordError(Exception):
    """An error answer, in Discord's JSON shape ``{"code": ..., "message": ...}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def unknown_message() -> DiscordError:
    """Return Discord's "Unknown Message" error (10008)."""
    return DiscordError(404, 10008, "Unknown Message")


def json_response(data: Any, status: int = 200) -> web.Response:
    """Answer ``data`` as JSON with the content type discord.py requires."""
    # discord.py decodes JSON only when the content type is exactly "application/json",
    # so no "; charset=utf-8" as web.json_response would add.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


async def read_body(request: web.Request) -> tuple[Any, list[RecordedFile]]:
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
