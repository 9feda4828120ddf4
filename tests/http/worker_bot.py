"""The bot of the worker tests and the HTTP benchmark: tallies that any worker serves.

Workers run it with ``python -m nyx_sessions serve tests.http.worker_bot:create_bot``;
``NYX_OFFLINE_API`` points discord.py's REST at the offline Discord of the test process,
``REDIS_URL`` at the shared store.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import discord
from discord import app_commands
from discord.http import Route

from nyx_sessions import AbstractSession, EndCode, SessionManager
from nyx_sessions.stores.redis import RedisStore

PID = os.getpid()


class Tally(AbstractSession[int]):
    """Counts "+1" clicks, keeping the id of every click it counted; "done" ends it."""

    session_type = "tests.http.tally"
    ttl = 30

    def view(self) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        for action in ("inc", "done"):
            view.add_item(
                discord.ui.Button(label=action, custom_id=self.custom_id.push(action).build())
            )
        return view

    async def start(self) -> None:
        self.data["count"] = 0
        self.data["clicks"] = []
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message(f"count 0 pid {PID}", view=self.view())

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        data: Any = interaction.data
        if self.manager.codec.create_iterator(data["custom_id"]).get_at(0) == "done":
            await interaction.response.edit_message(
                content=f"final {self.data['count']} clicks {','.join(self.data['clicks'])}",
                view=None,
            )
            await self.stop(result=self.data["count"])
            return False
        # Work that takes a while, so that a SIGKILL lands in the middle of clicks.
        await asyncio.sleep(float(os.environ.get("NYX_CLICK_WORK", "0.02")))
        self.data["count"] += 1
        # The tests check every click id; the benchmark (NYX_KEEP_CLICKS=0) keeps its
        # records at one size, so that a click costs the same in every run.
        if os.environ.get("NYX_KEEP_CLICKS", "1") == "1":
            self.data["clicks"].append(str(interaction.id))
        await interaction.response.edit_message(content=f"count {self.data['count']} pid {PID}")
        return True

    async def end(self) -> None:
        self.result = self.data["count"]
        if self.end_code is EndCode.EXPIRED and self.manager is not None and self.channel_id:
            assert self.manager.client is not None
            channel = self.manager.client.get_partial_messageable(self.channel_id)
            clicks = ",".join(self.data["clicks"])
            await channel.send(
                f"expired {self.id} count {self.data['count']} clicks {clicks} pid {PID}"
            )


class ShortTally(Tally):
    """A tally that expires after 3 seconds without a click."""

    session_type = "tests.http.short-tally"
    ttl = 3


class WorkerBot(discord.Client):
    """A client with a ``/tally`` command and a manager on Redis."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(intents=discord.Intents.none())
        self.tree = app_commands.CommandTree(self)
        self.store = RedisStore.from_url(redis_url)
        self.manager = SessionManager(
            self, store=self.store, sessions=[Tally, ShortTally], lease=2.0, lease_wait=4.0
        )

        @self.tree.command(description="Start a tally")
        async def tally(interaction: discord.Interaction[Any], short: bool = False) -> None:
            session = (ShortTally if short else Tally)(interaction)
            await self.manager.start(session)
            end = await session.end_promise
            await interaction.followup.send(f"ended {end.code.name} {end.result} awaited in {PID}")

    async def close(self) -> None:
        await self.manager.aclose()
        await self.store.aclose()
        await super().close()


def create_bot() -> WorkerBot:
    """Build one worker's bot from the environment."""
    api = os.environ.get("NYX_OFFLINE_API")
    if api:
        Route.BASE = api
    return WorkerBot(os.environ["REDIS_URL"])
