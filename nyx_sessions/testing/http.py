"""The offline Discord over HTTP: interactions delivered by signed POST, as Discord does.

:class:`HttpOfflineDiscord` is an :class:`~nyx_sessions.testing.OfflineDiscord` whose
interactions go to an interactions endpoint (:func:`nyx_sessions.http.create_app`) as
Discord's signed HTTP requests, signed with a test key pair
(:class:`InteractionSigner`). A bot is tested in HTTP mode with the same calls as in
gateway mode (``slash_command``, ``click``, ``select``, ``submit_modal``), and what it
did is in the same records.

The response body of each request is the bot's first response: it is handed to the REST
server's callback route, so that it is checked and recorded (in :attr:`requests` too)
like a callback the bot POSTed. A REST call that the bot makes with the token of an
interaction whose HTTP response is on its way waits for that response first, as the
bot only makes it after sending the response.

Without ``url``, every client (see :meth:`OfflineDiscord.login`) gets its own endpoint
on 127.0.0.1, which logs it in over REST only: no gateway events, no guild or member
cache, as for a real HTTP bot. With ``url``, interactions go there (workers in other
processes, or a load balancer in front of them) and no client is logged in here.

Examples
--------
>>> async with HttpOfflineDiscord(bot) as offline:  # doctest: +SKIP
...     alice = offline.add_member("alice")
...     res = await offline.slash_command(alice, "counter")
...     res = await offline.click(alice, res.message, label="+1")
...     assert res.message.content == "Count: 1"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from aiohttp import web
from nacl.signing import SigningKey

from nyx_sessions.http import InteractionsApp
from nyx_sessions.http.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from nyx_sessions.testing.offline import OfflineDiscord
from nyx_sessions.testing.records import InteractionResult
from nyx_sessions.testing.server import OfflineServer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.world import OfflineWorld

__all__ = ["REPLAY_HEADER", "HttpOfflineDiscord", "InteractionSigner"]

REPLAY_HEADER = "X-Offline-Http-Answer"
"""Marks the callback that stands for an answer given in an HTTP response body."""

_SETTLE = 5.0  # seconds a REST call waits for the HTTP answer of its interaction


class InteractionSigner:
    """Signs request bodies as Discord does, with its own Ed25519 key pair.

    Parameters
    ----------
    seed:
        32 bytes to derive the key pair from; default: a fresh random pair.
    """

    __slots__ = ("_key",)

    def __init__(self, seed: bytes | None = None) -> None:
        self._key = SigningKey(seed) if seed is not None else SigningKey.generate()

    @property
    def public_key(self) -> str:
        """The public key, 64 hex digits, as the developer portal shows it."""
        return self._key.verify_key.encode().hex()

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Return the signature headers of ``body`` (signed now unless ``timestamp``)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign(stamp.encode() + body).signature.hex()
        return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp}

    def __repr__(self) -> str:
        return f"<InteractionSigner public_key={self.public_key}>"


class _GatedServer(OfflineServer):
    """The REST server, holding back a bot's calls until the HTTP answer they follow."""

    def __init__(self, world: OfflineWorld, *, ack_window: float) -> None:
        super().__init__(world, ack_window=ack_window)
        self.in_flight: dict[str, asyncio.Event] = {}

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        app.middlewares.append(self._gate)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if REPLAY_HEADER not in request.headers:
            for segment in request.path.split("/"):
                delivered = self.in_flight.get(segment)
                if delivered is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(delivered.wait(), _SETTLE)
                    break
        response: web.StreamResponse = await handler(request)
        return response


class HttpOfflineDiscord(OfflineDiscord):
    """An :class:`OfflineDiscord` that delivers interactions by signed HTTP POST.

    Parameters
    ----------
    client:
        As for :class:`OfflineDiscord`; served by an endpoint of its own unless ``url``.
    url:
        Where to POST interactions instead: endpoints in other processes, or a load
        balancer; they log themselves in (token ``offline-token``, REST at
        :attr:`api_url`, public key :attr:`public_key`).
    signer:
        The key pair; default: a fresh one.
    path:
        The endpoint path of the local endpoints.
    app_options:
        More options for each local :class:`~nyx_sessions.http.InteractionsApp`.
    **options:
        The options of :class:`OfflineDiscord` (``ack_window``, ``clock``, ...).

    Attributes
    ----------
    signer:
        The key pair that signs the requests.
    statuses:
        The HTTP status of each delivered interaction, by interaction id; 0 when the
        endpoint timed out or dropped the connection.
    """

    def __init__(
        self,
        client: discord.Client | None = None,
        *,
        url: str | None = None,
        signer: InteractionSigner | None = None,
        path: str = "/interactions",
        app_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(client, **options)
        self._gated = _GatedServer(self.world, ack_window=self.server.interactions.ack_window)
        self.server = self._gated
        self.signer = signer or InteractionSigner()
        self.url = url
        self.path = path
        self.app_options = dict(app_options or {})
        self.statuses: dict[int, int] = {}
        self._endpoints: dict[discord.Client, tuple[web.AppRunner, str]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def public_key(self) -> str:
        """The public key that endpoints verify the requests with."""
        return self.signer.public_key

    @property
    def api_url(self) -> str:
        """The REST server's base URL, for ``discord.http.Route.BASE`` in other processes."""
        return self.server.base_url

    def endpoint_url(self, client: discord.Client | None = None) -> str:
        """Return the URL that ``client``'s interactions are POSTed to."""
        if self.url is not None:
            return self.url
        return self._endpoints[client or self.client][1]

    async def aclose(self) -> None:
        """Finish deliveries, close the endpoints and clients, stop the server; idempotent."""
        for task in list(self._deliveries):
            with contextlib.suppress(Exception):
                await task
        await super().aclose()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def login(self, client: discord.Client) -> None:
        """Serve ``client`` by an endpoint of its own, which logs it in (not with ``url``)."""
        if self.url is not None:
            return
        options: dict[str, Any] = {"token": "offline-token", **self.app_options}
        endpoint = InteractionsApp(client, public_key=self.public_key, path=self.path, **options)
        runner = web.AppRunner(endpoint.app, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await client.close()
            raise
        host, port = runner.addresses[0][:2]
        self._endpoints[client] = (runner, f"http://{host}:{port}{self.path}")
        self.clients.append(client)

    async def logout(self, client: discord.Client) -> None:
        """Shut ``client``'s endpoint down (draining it) and close the client."""
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        endpoint = self._endpoints.pop(client, None)
        if endpoint is not None:
            await endpoint[0].cleanup()
        await client.close()

    def _gateway(self, event: str, data: Payload) -> None:
        # An HTTP bot has no gateway: guild, member and channel events never reach it.
        return

    async def feed(
        self,
        payload: Payload,
        *,
        client: discord.Client | None = None,
        wait: bool = True,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline per call reads best in tests
    ) -> InteractionResult:
        """POST an interaction payload, signed, to the endpoint, as Discord does.

        Parameters
        ----------
        payload:
            The payload, e.g. from :meth:`make_interaction_payload`.
        client:
            The client whose endpoint receives it (without ``url``); default: :attr:`client`.
        wait:
            Wait for the HTTP response (or ``timeout``); else deliver in the background.
        timeout:
            Seconds to wait for the HTTP response.
        """
        source_id = int(payload["message"]["id"]) if "message" in payload else None
        result = InteractionResult(
            payload,
            fed_at=self.world.clock.now(),
            source_message=self.world.messages.get(source_id) if source_id else None,
        )
        self.world.add_interaction(result)
        target = None if self.url is not None else client or self.client
        delivery = self._deliver(result, target, timeout)
        if wait:
            await delivery
            if result.answered:
                await result.wait_answered(timeout)  # lets the bot go on past its answer
        else:
            task = asyncio.create_task(delivery, name=f"nyx-sessions-http-feed-{result.id}")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return result

    async def _deliver(
        self,
        result: InteractionResult,
        client: discord.Client | None,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        body = json.dumps(result.payload).encode()
        headers = {**self.signer.headers(body), "Content-Type": "application/json"}
        parsed = None
        if client is not None:
            parsed = client.wait_for("interaction", check=lambda i: i.id == result.id, timeout=0)
        answered = self._gated.in_flight[result.token] = asyncio.Event()
        try:
            async with self._http.post(
                self.endpoint_url(client),
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                self.statuses[result.id] = response.status
                if response.status == 200:
                    await self._record_answer(result, response)
        except (TimeoutError, aiohttp.ClientError):
            # As on Discord, an endpoint that does not answer fails the interaction.
            self.statuses.setdefault(result.id, 0)
        finally:
            answered.set()
            self._gated.in_flight.pop(result.token, None)
            if parsed is not None:
                with contextlib.suppress(TimeoutError):
                    result._set_interaction(await parsed)

    async def _record_answer(
        self, result: InteractionResult, response: aiohttp.ClientResponse
    ) -> None:
        assert self._http is not None
        callback = (
            f"{self.api_url}/interactions/{result.id}/{result.token}/callback?with_response=1"
        )
        headers = {REPLAY_HEADER: "1", "Content-Type": response.headers["Content-Type"]}
        async with self._http.post(callback, data=await response.read(), headers=headers):
            pass

    def __repr__(self) -> str:
        where = self.url or f"{len(self._endpoints)} local endpoints"
        return f"<HttpOfflineDiscord {where} {self.world!r}>"
