"""Session classes shared by the tests."""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from nyx_sessions import AbstractSession, OwnerOnly


class Counter(AbstractSession[int]):
    """The contract's example, word for word."""

    ttl = 60
    update_filter = OwnerOnly()

    async def start(self) -> None:
        self.data["count"] = 0
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.custom_id.push("inc").build()))
        view.add_item(
            discord.ui.Button(label="Done", custom_id=self.custom_id.push("done").build())
        )
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("0", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        data: Any = interaction.data
        action = self.manager.codec.create_iterator(data["custom_id"]).get_at(0)
        if action == "done":
            await interaction.response.edit_message(content="done", view=None)
            await self.stop(result=self.data["count"])
            return False
        self.data["count"] += 1
        await interaction.response.edit_message(content=str(self.data["count"]))
        return True

    async def end(self) -> None:
        self.result = self.data["count"]


class Probe(AbstractSession[list[str]]):
    """Records what reaches it; behaviour is steered through class attributes per test."""

    ttl = 60
    refresh = True
    answer = True
    gate: asyncio.Event | None = None

    async def start(self) -> None:
        self.data["seen"] = []
        self.data["active"] = 0
        self.data["overlaps"] = 0
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="go", custom_id=self.custom_id.push("go").build()))
        view.add_item(
            discord.ui.Button(label="boom", custom_id=self.custom_id.push("boom").build())
        )
        view.add_item(
            discord.ui.Button(label="stop", custom_id=self.custom_id.push("stop").build())
        )
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("probe", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        assert self.manager is not None
        data: Any = interaction.data
        action = self.manager.codec.create_iterator(data["custom_id"]).get_at(0)
        self.data["active"] += 1
        if self.data["active"] > 1:
            self.data["overlaps"] += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            self.data["seen"].append(f"{action}:{interaction.user.id}:{interaction.id}")
            if action == "boom":
                raise RuntimeError("handler exploded")
            if action == "stop":
                await self.stop(result=list(self.data["seen"]), reason="stop button")
                return False
            if self.answer:
                content = str(len(self.data["seen"]))
                if interaction.response.is_done():  # deferred by the manager: it ran long
                    await interaction.edit_original_response(content=content)
                else:
                    await interaction.response.edit_message(content=content)
            return self.refresh
        finally:
            self.data["active"] -= 1

    async def handle_select_menu(self, interaction: discord.Interaction[Any]) -> bool:
        data: Any = interaction.data
        self.data["seen"].append(f"select:{data['component_type']}:{','.join(data['values'])}")
        return True

    async def handle_modal(self, interaction: discord.Interaction[Any]) -> bool:
        self.data["seen"].append(f"modal:{interaction.id}")
        return True

    async def end(self) -> None:
        if self.result is None:
            self.result = list(self.data["seen"])
