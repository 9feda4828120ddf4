"""``python -m nyx_sessions demo``: a few sessions played end to end in the offline Discord.

No token and no network: a real discord.py client talks to the offline Discord on
127.0.0.1, and the transcript shows what users would see.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

import discord

from . import (
    AbstractSession,
    EndCode,
    OwnerOnly,
    SessionEndData,
    SessionEvent,
    SessionManager,
    action,
    select_values,
)
from .sessions import ChoiceField, FormSession, PaginationSession, TextField
from .testing import ManualClock, OfflineDiscord

if TYPE_CHECKING:
    from rich.console import Console

    from .testing import InteractionResult, OfflineMessage, OfflineUser

__all__ = ["main", "run_demo"]


class Counter(AbstractSession[int]):
    """Counts clicks; only its owner may click."""

    ttl = 60
    update_filter = OwnerOnly()

    async def start(self) -> None:
        self.data["count"] = 0
        await self.reply(self.start_interaction, "Count: 0", view=self._view())

    def _view(self) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="+1", custom_id=self.action_id("inc")))
        view.add_item(
            discord.ui.Button(
                label="Done", style=discord.ButtonStyle.success, custom_id=self.action_id("done")
            )
        )
        return view

    @action("inc")
    async def inc(self, interaction: discord.Interaction[Any]) -> bool:
        self.data["count"] += 1
        await self.edit(interaction, content=f"Count: {self.data['count']}")
        return True

    @action("done")
    async def done(self, interaction: discord.Interaction[Any]) -> bool:
        await self.edit(interaction, content=f"Final count: {self.data['count']}", view=None)
        await self.stop(result=self.data["count"])
        return False


class LunchPoll(AbstractSession[dict[str, int]]):
    """Everyone may vote once (a later vote replaces the earlier one); the owner closes it."""

    ttl = 120
    choices = ("pizza", "sushi", "salad")

    async def start(self) -> None:
        self.data["votes"] = {}
        await self.reply(self.start_interaction, self._content(), view=self._view())

    def _tally(self) -> dict[str, int]:
        counts = collections.Counter(self.data["votes"].values())
        return {choice: counts[choice] for choice in self.choices}

    def _content(self) -> str:
        tally = ", ".join(f"{choice} {count}" for choice, count in self._tally().items())
        return f"Lunch vote: {tally}"

    def _view(self) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Select(
                placeholder="Pick lunch",
                custom_id=self.action_id("vote"),
                options=[discord.SelectOption(label=c.title(), value=c) for c in self.choices],
            )
        )
        view.add_item(discord.ui.Button(label="Close vote", custom_id=self.action_id("close")))
        return view

    @action("vote")
    async def vote(self, interaction: discord.Interaction[Any]) -> bool:
        self.data["votes"][str(interaction.user.id)] = select_values(interaction, str)[0]
        await self.edit(interaction, content=self._content())
        return True

    @action("close")
    async def close(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await self.reply(
                interaction, "Only the person who opened the vote can close it.", ephemeral=True
            )
            return False
        await self.edit(interaction, content=f"Vote closed. {self._content()}", view=None)
        await self.stop(result=self._tally())
        return False


class Confirm(AbstractSession[bool]):
    """Yes or no; tidies its message when it expires."""

    ttl = 30
    update_filter = OwnerOnly()

    async def start(self) -> None:
        await self.reply(
            self.start_interaction, "Delete the old logs?", view=self._view(disabled=False)
        )

    def _view(self, *, disabled: bool) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        for label, style in (
            ("Yes", discord.ButtonStyle.danger),
            ("No", discord.ButtonStyle.secondary),
        ):
            view.add_item(
                discord.ui.Button(
                    label=label,
                    style=style,
                    disabled=disabled,
                    custom_id=self.action_id(label.lower()),
                )
            )
        return view

    @action("yes")
    async def yes(self, interaction: discord.Interaction[Any]) -> bool:
        return await self._answer(interaction, True)

    @action("no")
    async def no(self, interaction: discord.Interaction[Any]) -> bool:
        return await self._answer(interaction, False)

    async def _answer(self, interaction: discord.Interaction[Any], answer: bool) -> bool:
        await self.edit(interaction, content="Deleted." if answer else "Kept.", view=None)
        await self.stop(result=answer)
        return False

    async def end(self) -> None:
        if self.end_code is EndCode.EXPIRED and self.message is not None:
            # By message id: works long after the 15-minute interaction token is gone.
            await self.edit(
                None,
                content="Delete the old logs? (no answer, expired)",
                view=self._view(disabled=True),
            )


PLANETS = [
    ("Mercury", "The smallest planet, closest to the Sun."),
    ("Venus", "The hottest planet, under thick clouds."),
    ("Earth", "Home."),
    ("Mars", "The red planet, with the tallest volcano."),
]


def _whole_number(text: str) -> str | None:
    return None if text.isdigit() and 1 <= int(text) <= 20 else "a whole number from 1 to 20."


class PizzaOrder(FormSession[dict[str, Any]]):
    """A two-step form: a modal, then a select; invalid values are asked again."""

    session_type = "demo.pizza-order"
    title = "Pizza order"
    fields = (
        TextField("name", "Name for the order", max_length=32),
        TextField("count", "How many pizzas", validate=_whole_number, convert=int),
        ChoiceField("size", "Size", options=["small", "medium", "large"]),
    )


class Transcript:
    """Prints what happens, the way Discord would show it."""

    def __init__(self, console: Console, offline: OfflineDiscord) -> None:
        self.console = console
        self.offline = offline

    def heading(self, text: str) -> None:
        self.console.rule(f"[bold]{text}")

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/dim]")

    def action(self, user: OfflineUser, text: str) -> None:
        self.console.print(f"[bold cyan]{user.name}[/bold cyan] {text}")

    def message(self, message: OfflineMessage | None, *, title: str = "bot") -> None:
        from rich.panel import Panel
        from rich.text import Text

        if message is None:
            return
        lines = [Text(message.content)] if message.content else []
        for embed in message.embeds:
            parts = (embed.get("title"), embed.get("description"))
            footer = (embed.get("footer") or {}).get("text")
            lines += [Text(f"| {part}") for part in (*parts, footer) if part]
        for row in message.components:
            line = Text()
            for component in row.get("components", []):
                line.append(_render_component(component) + " ")
            if line:
                lines.append(line)
        body = Text("\n").join(lines)
        flags = " (only you can see this)" if message.ephemeral else ""
        self.console.print(Panel(body, title=f"{title}{flags}", title_align="left", expand=False))

    def result(self, result: InteractionResult) -> None:
        from rich.panel import Panel

        if result.modal is not None:
            modal = result.modal
            fields = [
                f"[ {component.get('label') or component.get('custom_id')}: ____ ]"
                for row in modal.get("components", [])
                for component in [row.get("component") or row, *row.get("components", [])]
                if component.get("type") == discord.ComponentType.text_input.value
            ]
            self.console.print(
                Panel("\n".join(fields), title=f"modal: {modal.get('title')}", expand=False)
            )
            return
        if result.message is not None and result.message is not result.source_message:
            self.message(result.message, title="reply")
        elif result.source_message is not None:
            self.message(result.source_message, title="message updated")


def _name(component: dict[str, Any]) -> str:
    return f"{component.get('label') or ''} {component.get('custom_id') or ''}".lower()


def _render_component(component: dict[str, Any]) -> str:
    kind = component.get("type")
    if kind == discord.ComponentType.button.value:
        label = component.get("label") or "?"
        return f"[ {label} ]" + (" (disabled)" if component.get("disabled") else "")
    if kind in (3, 5, 6, 7, 8):
        return f"[ {component.get('placeholder') or 'Select'} v ]"
    return f"<component {kind}>"


async def run_demo(console: Console) -> dict[str, Any]:
    """Play the demo and return each session's end data (used by the tests)."""
    clock = ManualClock()
    results: dict[str, Any] = {}
    async with OfflineDiscord() as offline:
        manager = SessionManager(offline.client, clock=clock)
        show = Transcript(console, offline)
        alice = offline.add_member("alice")
        bob = offline.add_member("bob")
        carol = offline.add_member("carol")

        async def on_end(session: AbstractSession[Any], end: Any) -> None:
            show.note(f"session {type(session).__name__} ended: {end.code.value}")

        manager.add_listener(SessionEvent.END, on_end)

        show.heading("A counter only its owner can click")
        show.action(alice, "runs /counter")
        command = await offline.slash_command(alice, "counter", wait=False)
        counter = Counter(command.interaction)
        await manager.start(counter)
        show.message(command.message)
        for user in (alice, alice, bob, alice):
            show.action(user, "clicks [ +1 ]")
            assert command.message is not None
            show.result(await offline.click(user, command.message, label="+1"))
        show.action(alice, "clicks [ Done ]")
        assert command.message is not None
        show.result(await offline.click(alice, command.message, label="Done"))
        end: SessionEndData[Any] = await counter.end_promise
        await asyncio.sleep(0.01)  # let the END listener print first
        show.note(f"end promise: code={end.code.value} result={end.result}")
        results["counter"] = end

        show.heading("A lunch vote anyone can join")
        show.action(alice, "runs /lunch")
        command = await offline.slash_command(alice, "lunch", wait=False)
        poll = LunchPoll(command.interaction)
        await manager.start(poll)
        show.message(command.message)
        for user, choice in ((alice, "pizza"), (bob, "sushi"), (carol, "pizza")):
            show.action(user, f"picks {choice}")
            assert command.message is not None
            show.result(await offline.select(user, command.message, values=[choice]))
        show.action(bob, "clicks [ Close vote ]")
        assert command.message is not None
        show.result(await offline.click(bob, command.message, label="Close vote"))
        show.action(alice, "clicks [ Close vote ]")
        show.result(await offline.click(alice, command.message, label="Close vote"))
        end = await poll.end_promise
        await asyncio.sleep(0.01)
        show.note(f"end promise: code={end.code.value} result={end.result}")
        results["poll"] = end

        show.heading("A question nobody answers")
        show.action(alice, "runs /cleanup")
        command = await offline.slash_command(alice, "cleanup", wait=False)
        confirm = Confirm(command.interaction)
        await manager.start(confirm)
        show.message(command.message)
        show.note("... 31 seconds pass (the TTL is 30 s) ...")
        await clock.advance(31)
        end = await confirm.end_promise
        await asyncio.sleep(0.01)
        show.message(command.message, title="message edited by end()")
        show.note(f"end promise: code={end.code.value} result={end.result}")
        results["confirm"] = end

        show.heading("A counter left alone")
        show.action(carol, "runs /counter")
        command = await offline.slash_command(carol, "counter", wait=False)
        idle = Counter(command.interaction)
        await manager.start(idle)
        show.message(command.message)
        show.note("... 61 seconds pass (the TTL is 60 s) ...")
        await clock.advance(61)
        end = await idle.end_promise
        await asyncio.sleep(0.01)
        show.action(carol, "clicks [ +1 ] on the expired counter")
        assert command.message is not None
        show.result(await offline.click(carol, command.message, label="+1"))
        results["idle"] = end

        show.heading("Ready-made: a paginator")
        show.action(bob, "runs /planets")
        command = await offline.slash_command(bob, "planets", wait=False)
        pages = [
            discord.Embed(title=name, description=text).set_footer(text=f"Planet {n} of 4")
            for n, (name, text) in enumerate(PLANETS, start=1)
        ]
        paginator = PaginationSession(command.interaction, pages)
        await manager.start(paginator)
        show.message(command.message)
        assert command.message is not None
        for label in ("Next", "Last"):
            button = next(b for b in command.message.buttons if label.lower() in _name(b))
            show.action(bob, f"clicks [ {button.get('label') or label} ]")
            show.result(await offline.click(bob, command.message, custom_id=button["custom_id"]))
        show.action(bob, "clicks a forged button naming page 99")
        forged = paginator.action_id("go", 99, "next")
        payload = offline.make_interaction_payload(
            bob,
            discord.InteractionType.component,
            {"custom_id": forged, "component_type": 2},
            message=command.message,
        )
        show.result(await offline.feed(payload))
        await manager.end(paginator)
        results["paginator"] = await paginator.end_promise

        show.heading("Ready-made: a form that checks what it is given")
        show.action(carol, "runs /pizza")
        command = await offline.slash_command(carol, "pizza", wait=False)
        order = PizzaOrder(command.interaction)
        await manager.start(order)
        show.message(command.message)
        assert command.message is not None
        for values in ({"name": "Carol", "count": "lots"}, {"name": "Carol", "count": "2"}):
            fill = command.message.buttons[0]
            show.action(carol, f"clicks [ {fill.get('label')} ]")
            opened = await offline.click(carol, command.message, custom_id=fill["custom_id"])
            show.result(opened)
            show.action(carol, f"submits {values}")
            show.result(await offline.submit_modal(carol, opened, values))
        show.action(carol, "picks large")
        show.result(await offline.select(carol, command.message, ["large"]))
        end = await order.end_promise
        await asyncio.sleep(0.01)
        show.note(f"end promise: code={end.code.value} result={end.result}")
        results["form"] = end

        show.heading("Summary")
        calls = collections.Counter(f"{r.method} {r.route}" for r in offline.requests)
        for route, count in sorted(calls.items()):
            show.note(f"{count:3d} x {route}")
        await manager.aclose()
    return results


def main() -> int:
    """Run the demo and print its transcript."""
    from rich.console import Console

    asyncio.run(run_demo(Console(highlight=False)))
    return 0
