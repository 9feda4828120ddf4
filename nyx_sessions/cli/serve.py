"""``python -m nyx_sessions serve module:bot``: one HTTP interactions worker.

The target is ``module:attribute``: a ``discord.Client`` / ``commands.Bot``, or a
function (plain or async) that returns one, called inside the running event loop. The
worker serves :func:`nyx_sessions.http.create_app` with aiohttp's runner, logs the
client in over REST (no gateway connection) and stops cleanly on SIGTERM or SIGINT:
``/healthz`` turns 503, interactions in flight are answered, the client is closed.

Configuration comes from the environment and is never printed: ``DISCORD_TOKEN``,
``DISCORD_PUBLIC_KEY`` and, read by the bot itself, ``REDIS_URL``. Run one worker per
core behind a load balancer; see the HTTP interactions guide.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import inspect
import os
import signal
import sys
from typing import Any

import discord
from aiohttp import web

__all__ = ["DESCRIPTION", "configure", "load_client", "run"]

DESCRIPTION = (
    "Serve a bot's interactions over HTTP: one worker (run several behind a load "
    "balancer). Needs DISCORD_TOKEN and DISCORD_PUBLIC_KEY in the environment."
)

_ENV_MISSING = 2


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` arguments to ``parser``."""
    parser.add_argument("target", help="the bot: module:attribute (a client, or a factory)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--path", default="/interactions", help="the endpoint's path")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for interactions in flight on shutdown",
    )


async def load_client(target: str) -> discord.Client:
    """Import ``module:attribute`` and return the client it is or makes.

    Raises
    ------
    ValueError
        ``target`` is not ``module:attribute``, or does not give a ``discord.Client``.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"expected module:attribute, got {target!r}")
    found: Any = importlib.import_module(module_name)
    for name in attribute.split("."):
        found = getattr(found, name)
    if callable(found) and not isinstance(found, discord.Client):
        found = found()
        if inspect.isawaitable(found):
            found = await found
    if not isinstance(found, discord.Client):
        raise ValueError(f"{target} is not a discord.Client (got {type(found).__name__})")
    return found


async def serve(args: argparse.Namespace, token: str, public_key: str) -> None:
    """Run one worker until SIGTERM or SIGINT."""
    from ..http import InteractionsApp

    client = await load_client(args.target)
    endpoint = InteractionsApp(
        client,
        public_key=public_key,
        path=args.path,
        token=token,
        drain_timeout=args.drain_timeout,
    )
    runner = web.AppRunner(endpoint.app, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        # What start-up made (modules, the bot, its commands) lives as long as the worker:
        # kept out of the collector's full passes, which then take a fraction of the time.
        gc.freeze()
        print(f"serving interactions on http://{args.host}:{args.port}{args.path}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    """Run ``serve`` from parsed arguments; return the exit code."""
    token = os.environ.get("DISCORD_TOKEN", "")
    public_key = os.environ.get("DISCORD_PUBLIC_KEY", "")
    missing = [
        name
        for name, value in [("DISCORD_TOKEN", token), ("DISCORD_PUBLIC_KEY", public_key)]
        if not value
    ]
    if missing:
        print(f"set {' and '.join(missing)} in the environment", file=sys.stderr)
        return _ENV_MISSING
    discord.utils.setup_logging()
    sys.path.insert(0, os.getcwd())  # like python -m: the bot's module is found from here
    asyncio.run(serve(args, token, public_key))
    return 0
