"""The floor of a signed HTTP interaction: aiohttp's web.Application and PyNaCl, alone.

``python -m bench.http_floor PORT PUBLIC_KEY`` serves one ``POST /interactions`` route
that reads the body, checks its Ed25519 signature with PyNaCl's ``VerifyKey`` and
answers a constant PONG, and ``GET /healthz``. No code of nyx-sessions runs in it: its
CPU per request is what any endpoint built on these two libraries costs at the least,
the floor under the interactions endpoint's PING (see :mod:`bench.http`).
"""

from __future__ import annotations

import subprocess
import sys

from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from tests.http.cluster import ROOT, free_port, wait_until_up

PONG = b'{"type":1}'


class FloorServer:
    """The bare endpoint in a process of its own, on a free loopback port."""

    def __init__(self, public_key: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.http_floor", str(self.port), public_key], cwd=ROOT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/interactions"

    def wait_until_up(self) -> None:
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz", self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


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
    port, public_key = int(argv[0]), argv[1]
    web.run_app(create_app(public_key), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
