"""Overload: how large an unpaced burst of clicks one process answers within 3 seconds.

Every click of a burst is fed at once (no pause between them) to sessions whose handler
answers over HTTP (``edit_message``) against the offline Discord, which refuses an
answer that comes more than 3 seconds after the click was fed (10062 "Unknown
interaction"), as Discord does. A burst counts as answered in time when every click got
its first answer within those 3 seconds; the report gives, per store, the share answered
in time for each burst size and the largest burst answered completely.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from typing import Any

import discord

from bench.report import Row, report, section
from nyx_sessions import AbstractSession, SessionManager
from nyx_sessions.stores.redis import RedisStore
from nyx_sessions.testing import OfflineDiscord
from tests.stores.redis_server import RedisServer

SESSIONS = 100
SIZES = (500, 1_000, 2_000, 4_000)
QUICK_SIZES = (250, 500, 1_000)
SETTLE = 15.0  # seconds a burst gets to be answered, in time or not
_CALLBACK = re.compile(r"^/interactions/(\d+)/[^/]+/callback$")


class Clicked(AbstractSession[None]):
    """Counts clicks; every click is answered by editing the message."""

    session_type = "bench.overload"
    ttl = 600

    async def start(self) -> None:
        self.data["count"] = 0
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="go", custom_id=self.custom_id.push("go").build()))
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("0", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        self.data["count"] += 1
        await interaction.response.edit_message(content=str(self.data["count"]))
        return True


async def burst(offline: OfflineDiscord, manager: SessionManager, size: int) -> float:
    """Feed ``size`` clicks at once; return the share answered within 3 seconds."""
    user = offline.add_member(f"user-{size}")
    messages = []
    for _ in range(SESSIONS):
        command = await offline.slash_command(user, "go", wait=False)
        assert await manager.start(Clicked(command.interaction))
        await command.wait_answered()
        assert command.message is not None
        messages.append(command.message)
    before = len(offline.requests)
    results = [
        await offline.click(user, messages[i % SESSIONS], label="go", wait=False)
        for i in range(size)
    ]
    waits = (result.wait_answered(SETTLE) for result in results)
    await asyncio.gather(*waits, return_exceptions=True)
    first: dict[int, int] = {}
    for request in offline.requests[before:]:
        match = _CALLBACK.match(request.path)
        if request.method == "POST" and match is not None:
            first.setdefault(int(match[1]), request.status or 0)
    statuses = Counter(status < 300 for status in first.values())
    return statuses[True] / size


async def measure(store: str, sizes: tuple[int, ...], server: RedisServer | None) -> list[Row]:
    shares = []
    for size in sizes:
        async with OfflineDiscord() as offline:
            store_object = RedisStore(server.url) if server is not None else None
            manager = SessionManager(offline.client, store=store_object, sessions=[Clicked])
            try:
                shares.append(await burst(offline, manager, size))
            finally:
                await manager.aclose()
                if store_object is not None:
                    await store_object.aclose()
        report(f"{store}: burst of {size:,}", f"{shares[-1]:.1%} answered within 3 s")
    in_time = [size for size, share in zip(sizes, shares, strict=True) if share == 1.0]
    largest = max(in_time, default=0)
    return [Row(f"overload, {store}: largest burst answered in 3 s", f"{largest:,}")]


async def run(quick: bool) -> list[Row]:
    sizes = QUICK_SIZES if quick else SIZES
    section(f"overload: unpaced bursts over {SESSIONS} sessions, answered within 3 s")
    rows = await measure("memory store", sizes, None)
    binary = shutil.which("redis-server")
    if binary is None:
        print("  redis-server is not installed: the Redis store is skipped")
        return rows
    server = RedisServer(binary)
    server.start()
    try:
        rows += await measure("Redis store", sizes, server)
    finally:
        server.close()
    return rows
