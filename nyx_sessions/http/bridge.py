"""The two places where the endpoint relies on discord.py beyond its documented API.

discord.py has no documented way to serve interactions that arrive by HTTP (its
maintainers see it as out of scope), so the endpoint leans on exactly two things, both
checked by ``tests/http/test_bridge.py``, which fails loudly when a discord.py release
changes them:

1. **Parsing.** A payload is handed to ``client._connection.parsers["INTERACTION_CREATE"]``,
   the very function discord.py's gateway calls for that event. That makes the
   :class:`discord.Interaction`, routes it to the client's ``CommandTree``, views, modals
   and session manager, and dispatches ``on_interaction``, as on the gateway.
2. **The first response.** Every ``InteractionResponse`` method (``send_message``,
   ``defer``, ``edit_message``, ``send_modal``, ...) POSTs through the adapter that
   ``discord.webhook.async_.async_context.get()`` returns: a :class:`contextvars.ContextVar`
   holding an ``AsyncWebhookAdapter``, whose ``create_interaction_response(interaction_id,
   token, *, session, proxy, proxy_auth, params)`` sends the callback. The endpoint sets
   that variable to a :class:`FirstResponseAdapter` (a subclass) in its request handlers
   and start-up, so every task spawned from them, which copies the context, uses it. The
   adapter hands the first response of an interaction that the endpoint is waiting on to
   that endpoint, which sends it back as the body of Discord's HTTP request, and gives
   discord.py a callback answer of the documented shape. Every other call goes to the
   REST route as before.

A ContextVar is the least intrusive hook: nothing is patched, nothing global changes, and
code running outside the endpoint's context keeps discord.py's own adapter.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import discord
import orjson
from aiohttp import BytesPayload, MultipartWriter
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

if TYPE_CHECKING:
    import aiohttp
    from discord.http import MultipartParameters

__all__ = ["Answer", "FirstResponseAdapter", "PendingAnswer", "parse_interaction", "use_adapter"]

_EPHEMERAL = 1 << 6
_DEFERRED_CHANNEL_MESSAGE = 5


def parse_interaction(client: discord.Client, payload: dict[str, Any]) -> None:
    """Feed an ``INTERACTION_CREATE`` payload to discord.py's own gateway parser."""
    client._connection.parsers["INTERACTION_CREATE"](payload)


def use_adapter(adapter: FirstResponseAdapter) -> None:
    """Make ``adapter`` discord.py's webhook adapter in the current context."""
    async_context.set(adapter)


class Answer:
    """A first response, ready to be the body of the HTTP response."""

    __slots__ = ("body", "callback_type", "content_type", "flags")

    def __init__(self, params: MultipartParameters) -> None:
        payload: dict[str, Any] = params.payload or {}
        if params.multipart:
            # multipart holds payload_json and the files; files are read now, as the
            # caller closes them when the callback returns.
            payload = orjson.loads(str(params.multipart[0]["value"]))
            writer = MultipartWriter("form-data")
            for field in params.multipart:
                value = field["value"]
                data = value.read() if hasattr(value, "read") else value
                part = writer.append_payload(
                    BytesPayload(
                        data if isinstance(data, bytes) else str(data).encode(),
                        content_type=field.get("content_type") or "application/octet-stream",
                    )
                )
                if field.get("filename"):
                    part.set_content_disposition(
                        "form-data", name=field["name"], filename=field["filename"]
                    )
                else:
                    part.set_content_disposition("form-data", name=field["name"])
            self.body: bytes | MultipartWriter = writer
            self.content_type = writer.content_type
        else:
            self.body = orjson.dumps(payload)
            self.content_type = "application/json"
        self.callback_type = int(payload.get("type", 0))
        self.flags = int((payload.get("data") or {}).get("flags") or 0)

    def __repr__(self) -> str:
        return f"<Answer type={self.callback_type} {self.content_type}>"


class PendingAnswer:
    """An interaction whose endpoint waits for its first response."""

    __slots__ = ("answer", "interaction_type", "sent")

    def __init__(self, interaction_type: int) -> None:
        self.interaction_type = interaction_type
        # None: the interaction was answered some other way; the endpoint sends no body.
        self.answer: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self.sent = asyncio.Event()

    def __repr__(self) -> str:
        return f"<PendingAnswer type={self.interaction_type} answered={self.answer.done()}>"


class FirstResponseAdapter(AsyncWebhookAdapter):
    """discord.py's webhook adapter, but first responses go to the waiting endpoint.

    Parameters
    ----------
    send_timeout:
        Seconds the responding code waits for the endpoint to send its answer back.
    """

    def __init__(self, *, send_timeout: float = 5.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # discord.py leaves it untyped
        self.send_timeout = send_timeout
        self._pending: dict[int, PendingAnswer] = {}

    def expect(self, interaction_id: int, interaction_type: int) -> PendingAnswer:
        """Wait for the first response to ``interaction_id``; see :meth:`forget`."""
        pending = self._pending[interaction_id] = PendingAnswer(interaction_type)
        return pending

    def forget(self, interaction_id: int) -> None:
        """Stop waiting for ``interaction_id``: later responses go to the REST route."""
        pending = self._pending.pop(interaction_id, None)
        if pending is not None:
            pending.sent.set()

    def create_interaction_response(
        self,
        interaction_id: int,
        token: str,
        *,
        session: aiohttp.ClientSession,
        proxy: str | None = None,
        proxy_auth: aiohttp.BasicAuth | None = None,
        params: MultipartParameters,
    ) -> Any:
        """Hand the first response to the endpoint; anything else goes to Discord."""
        pending = self._pending.get(interaction_id)
        if pending is None or pending.answer.done():
            return super().create_interaction_response(
                interaction_id,
                token,
                session=session,
                proxy=proxy,
                proxy_auth=proxy_auth,
                params=params,
            )
        answer = Answer(params)
        pending.answer.set_result(answer)
        return self._answered(interaction_id, pending, answer)

    async def _answered(
        self, interaction_id: int, pending: PendingAnswer, answer: Answer
    ) -> dict[str, Any]:
        # Return once the answer has left, so that a followup the bot sends next comes
        # after it, as it would after a REST callback.
        try:
            async with asyncio.timeout(self.send_timeout):
                await pending.sent.wait()
        except TimeoutError:
            raise discord.DiscordException(
                f"the endpoint did not send the response to interaction {interaction_id}"
            ) from None
        # The shape of Discord's callback answer (with_response=1); no resource, as the
        # message itself is not known here.
        return {
            "interaction": {
                "id": str(interaction_id),
                "type": pending.interaction_type,
                "response_message_loading": answer.callback_type == _DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(answer.flags & _EPHEMERAL),
            }
        }

    def __repr__(self) -> str:
        return f"<FirstResponseAdapter pending={len(self._pending)}>"
