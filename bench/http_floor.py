"""The floor of a signed HTTP interaction: aiohttp's web.Application and PyNaCl, alone.

``python -m bench.http_floor PUBLIC_KEY --port PORT`` (run as a
:class:`tests.http.cluster.Worker` with ``module="bench.http_floor"``) serves one
``POST /interactions`` route
that reads the body, checks its Ed25519 signature with PyNaCl's ``VerifyKey`` and
answers a constant PONG, and ``GET /healthz``. No code of nyx-sessions runs in it: its
CPU per request is what any endpoint built on these two libraries costs at the least,
the floor under the interactions endpoint's PING (see :mod:`bench.http`).
"""

from __future__ import annotations

import argparse
import sys

from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

PONG = b'{"type":1}'


def create_app(public_key: str) -> web.Application:
    """The bare endpoint: read, verify, answer PONG."""
    key = VerifyKey(bytes.fromhex(public_key))

    async def interactions(request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers["X-Signature-Timestamp"].encode()
        try:
            key.verify(timestamp + body, bytes.fromhex(request.headers["X-Signature-Ed25519"]))
        except BadSignatureError:
            return web.Response(status=401)
        return web.Response(body=PONG, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/interactions", interactions)
    app.router.add_get("/healthz", health)
    return app


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_floor", description=__doc__)
    parser.add_argument("public_key", help="the key the requests are signed with (hex)")
    parser.add_argument("--port", type=int, required=True, help="127.0.0.1 port to listen on")
    args = parser.parse_args(argv)
    web.run_app(
        create_app(args.public_key), host="127.0.0.1", port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main(sys.argv[1:])
