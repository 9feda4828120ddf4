"""The interactions endpoint: an aiohttp app that serves a discord.py client over HTTP.

One request is one interaction: the signature is checked (401 when it fails), the body
size (413) and the JSON (400); a PING gets its PONG; anything else goes through
discord.py's own parser (see :mod:`nyx_sessions.http.bridge`), so app commands, views,
sessions and ``on_interaction`` listeners see it as on the gateway. The first response
the bot makes goes back as the HTTP response body, as Discord documents; a bot that has
not answered within ``answer_within`` seconds is deferred, so Discord's 3 seconds are
kept. Later responses (followups, edits) go through the webhook REST routes as usual.

The app logs the client in over REST when it starts (no gateway connection) unless it
is logged in already, and closes it when it cleans up if it logged it in. On shutdown it
stops taking interactions (``/healthz`` answers 503, so a load balancer moves on) and
waits for those in flight to be answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

import discord
import orjson
from aiohttp import web

from nyx_sessions.http.bridge import FirstResponseAdapter, parse_interaction, use_adapter
from nyx_sessions.http.signature import SignatureVerifier
from nyx_sessions.tasks import Tasks

if TYPE_CHECKING:
    from nyx_sessions.http.bridge import Answer, PendingAnswer

__all__ = ["INTERACTIONS_APP", "InteractionsApp", "create_app"]

_log = logging.getLogger("nyx_sessions.http")

_PING = 1
_PONG = b'{"type":1}'
_AUTOCOMPLETE = 4


class InteractionsApp:
    """The endpoint of one client; :attr:`app` is the aiohttp application.

    Parameters
    ----------
    client:
        The ``discord.Client`` or ``commands.Bot`` that handles the interactions.
    public_key:
        The application's public key (64 hex digits) that Discord signs requests with.
    path:
        The path of the interactions endpoint.
    token:
        The bot token to log in with at start-up; default: the ``DISCORD_TOKEN``
        environment variable. Not needed when the client is logged in already.
    max_body_size:
        Bytes a request body may have; larger ones get 413.
    max_age:
        Seconds a signature's timestamp may be away from now.
    answer_within:
        Seconds after which an unanswered interaction is deferred by the endpoint;
        under Discord's 3 s, above a :class:`~nyx_sessions.SessionManager`'s
        ``defer_after`` (2.5 s), so that the manager's own deferral comes first.
    drain_timeout:
        Seconds that shutdown waits for interactions in flight.
    """

    def __init__(
        self,
        client: discord.Client,
        *,
        public_key: str | bytes,
        path: str = "/interactions",
        token: str | None = None,
        max_body_size: int = 1 << 20,
        max_age: float = 300.0,
        answer_within: float = 2.7,
        drain_timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.verifier = SignatureVerifier(public_key, max_age=max_age)
        self.path = path
        self.answer_within = answer_within
        self.drain_timeout = drain_timeout
        self.adapter = FirstResponseAdapter()
        self._token = token
        self._logged_in_here = False
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._deferrals = Tasks()
        self.app = web.Application(client_max_size=max_body_size)
        self.app[INTERACTIONS_APP] = self
        self.app.router.add_post(path, self._handle)
        self.app.router.add_get("/healthz", self._health)
        self.app.on_startup.append(self._start)
        self.app.on_shutdown.append(self._drain)
        self.app.on_cleanup.append(self._close)

    @property
    def in_flight(self) -> int:
        """Interactions received and not answered yet."""
        return self._in_flight

    # -- lifecycle -------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        # Tasks made from here on (the client's setup_hook, a session manager's
        # background work) answer interactions through the endpoint.
        use_adapter(self.adapter)
        if self.client.user is not None:
            return
        token = self._token or os.environ.get("DISCORD_TOKEN")
        if not token:
            raise RuntimeError("no bot token: pass token= or set DISCORD_TOKEN")
        await self.client.login(token)
        self._logged_in_here = True

    async def _drain(self, app: web.Application) -> None:
        self._draining = True
        if self._in_flight:
            _log.info("waiting for %d interactions in flight", self._in_flight)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.drain_timeout)

    async def _close(self, app: web.Application) -> None:
        if self._logged_in_here:
            self._logged_in_here = False
            await self.client.close()

    # -- requests --------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        if self._draining or self.client.user is None or self.client.is_closed():
            return web.Response(status=503, text="unavailable")
        return web.Response(text="ok")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._draining:
            return web.Response(status=503, text="shutting down")
        body = await request.read()  # 413 past client_max_size
        if not self.verifier.verify(request.headers, body):
            return web.Response(status=401, text="invalid request signature")
        try:
            payload = orjson.loads(body)
            kind = int(payload["type"])
            interaction_id = 0 if kind == _PING else int(payload["id"])
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="malformed interaction")
        if kind == _PING:
            return web.Response(body=_PONG, content_type="application/json")
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._serve(request, payload, interaction_id, kind)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _serve(
        self, request: web.Request, payload: dict[str, Any], interaction_id: int, kind: int
    ) -> web.StreamResponse:
        use_adapter(self.adapter)
        pending = self.adapter.expect(interaction_id, kind)
        try:
            # The parser dispatches "interaction" synchronously, so this listener gets
            # the very object that the handlers answer through.
            parsed = self.client.wait_for(
                "interaction", check=lambda i: i.id == interaction_id, timeout=0
            )
            try:
                parse_interaction(self.client, payload)
            except Exception:
                with contextlib.suppress(TimeoutError):
                    await parsed
                _log.exception("discord.py could not parse interaction %s", interaction_id)
                return web.Response(status=400, text="malformed interaction")
            interaction: discord.Interaction[Any] = await parsed
            answer = await self._first_answer(interaction, pending)
            if answer is None:
                return web.Response(status=500, text="the bot did not answer")
            response = web.Response(body=answer.body, content_type=None)
            response.content_type = answer.content_type
            await response.prepare(request)
            await response.write_eof()
            return response
        finally:
            self.adapter.forget(interaction_id)

    async def _first_answer(
        self, interaction: discord.Interaction[Any], pending: PendingAnswer
    ) -> Answer | None:
        # One timer an interaction: a bot that has not answered in time gets deferred.
        late = asyncio.get_running_loop().call_later(
            self.answer_within, self._start_deferral, interaction, pending
        )
        try:
            return await pending.answer
        finally:
            late.cancel()

    def _start_deferral(
        self, interaction: discord.Interaction[Any], pending: PendingAnswer
    ) -> None:
        self._deferrals.spawn(
            self._defer(interaction, pending), f"nyx-sessions-http-defer-{interaction.id}"
        )

    async def _defer(self, interaction: discord.Interaction[Any], pending: PendingAnswer) -> None:
        _log.warning(
            "interaction %s unanswered after %ss: deferring it", interaction.id, self.answer_within
        )
        try:
            if interaction.type.value == _AUTOCOMPLETE:
                await interaction.response.autocomplete([])
            else:
                await interaction.response.defer()
        except discord.InteractionResponded:
            pass
        finally:
            if not pending.answer.done():
                # Answered by REST from outside the endpoint's context, or the deferral
                # failed: either way there is nothing to send back.
                _log.error("interaction %s was not answered through the endpoint", interaction.id)
                pending.answer.set_result(None)

    def __repr__(self) -> str:
        return f"<InteractionsApp path={self.path!r} in_flight={self._in_flight}>"


INTERACTIONS_APP = web.AppKey("nyx_sessions.http.InteractionsApp", InteractionsApp)
"""The key of the :class:`InteractionsApp` in the aiohttp application."""


def create_app(
    client: discord.Client,
    *,
    public_key: str | bytes,
    path: str = "/interactions",
    **options: Any,
) -> web.Application:
    """Return an aiohttp application that serves ``client``'s interactions over HTTP.

    Parameters
    ----------
    client:
        The ``discord.Client`` or ``commands.Bot``; logged in over REST at start-up
        unless it already is (no gateway connection), closed at clean-up if so.
    public_key:
        The application's public key from the developer portal.
    path:
        Where Discord POSTs interactions; also served: ``GET /healthz``.
    **options:
        More options of :class:`InteractionsApp` (``token``, ``max_body_size``, ...).

    Returns
    -------
    aiohttp.web.Application
        The application; ``app[INTERACTIONS_APP]`` is its :class:`InteractionsApp`.

    Examples
    --------
    >>> app = create_app(bot, public_key=os.environ["DISCORD_PUBLIC_KEY"])  # doctest: +SKIP
    >>> aiohttp.web.run_app(app, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    return InteractionsApp(client, public_key=public_key, path=path, **options).app
