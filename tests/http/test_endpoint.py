"""The interactions endpoint in one process: sessions, commands and listeners over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from examples import counter
from nyx_sessions import AbstractSession, SessionManager, modal_values
from nyx_sessions.testing import InteractionResult, ManualClock
from nyx_sessions.testing.http import HttpOfflineDiscord, InteractionSigner

CALLBACK = "/interactions/{webhook_id}/{webhook_token}/callback"


def callbacks(offline: HttpOfflineDiscord, result: InteractionResult) -> list[int]:
    """The statuses of the callbacks recorded for ``result`` (answers in bodies included)."""
    return [
        r.status
        for r in offline.requests
        if r.route == CALLBACK and r.path.startswith(f"/interactions/{result.id}/")
    ]


async def test_a_session_is_played_over_http_as_on_the_gateway() -> None:
    bot = counter.build_bot()
    seen: list[int] = []

    async def on_interaction(interaction: discord.Interaction[Any]) -> None:
        seen.append(interaction.id)

    bot.event(on_interaction)
    async with HttpOfflineDiscord(bot) as offline:
        alice, bob = offline.add_member("alice"), offline.add_member("bob")
        started = await offline.slash_command(alice, "counter")
        message = started.message
        assert message is not None and message.content == "Count: 0"
        clicks = [await offline.click(alice, message, label="+1") for _ in range(3)]
        refused = await offline.click(bob, message, label="+1")
        done = await offline.click(alice, message, label="Done")
        assert message.content == "Final count: 3"
        assert refused.ephemeral
        for result in [started, *clicks, refused, done]:
            assert offline.statuses[result.id] == 200
            assert callbacks(offline, result) == [200], result
            assert result.interaction.id == result.id
        assert seen == [r.id for r in [started, *clicks, refused, done]]
        # The first responses came back as HTTP bodies: the bot POSTed no callback.
        assert all(r.status == 200 for r in offline.requests)


class Survey(AbstractSession[str]):
    async def start(self) -> None:
        modal = discord.ui.Modal(title="Survey", custom_id=self.custom_id.push("answer").build())
        modal.add_item(discord.ui.TextInput(label="Name", custom_id="name"))
        assert self.start_interaction is not None
        await self.start_interaction.response.send_modal(modal)

    async def handle_modal(self, interaction: discord.Interaction[Any]) -> bool:
        name = modal_values(interaction)["name"]
        await interaction.response.send_message(f"hello {name}", ephemeral=True)
        await interaction.followup.send("followed up")
        await self.stop(result=str(name))
        return False


async def test_a_modal_and_a_followup_over_http() -> None:
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    manager = SessionManager(client)
    ends: list[str | None] = []

    @tree.command(description="Answer a survey")
    async def survey(interaction: discord.Interaction[Any]) -> None:
        session = Survey(interaction)
        await manager.start(session)
        ends.append((await session.end_promise).result)

    async with HttpOfflineDiscord(client) as offline:
        alice = offline.add_member("alice")
        shown = await offline.slash_command(alice, "survey")
        assert shown.modal is not None
        submitted = await offline.submit_modal(alice, shown, {"name": "Alice"})
        assert submitted.message is not None and submitted.message.content == "hello Alice"
        assert submitted.ephemeral
        [followup] = submitted.followups
        assert followup.content == "followed up"
        for _ in range(100):
            if ends:
                break
            await asyncio.sleep(0.01)
        assert ends == ["Alice"]
    await manager.aclose()


async def test_a_slow_handler_is_deferred_in_time_and_finishes_by_rest() -> None:
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)

    @tree.command(description="Think slowly")
    async def slow(interaction: discord.Interaction[Any]) -> None:
        await asyncio.sleep(0.4)
        await interaction.followup.send("thought it over")

    options = {"answer_within": 0.1}
    async with HttpOfflineDiscord(client, app_options=options) as offline:
        alice = offline.add_member("alice")
        result = await offline.slash_command(alice, "slow")
        assert result.response is not None
        assert result.response.type is discord.InteractionResponseType.deferred_channel_message
        await offline.wait_for_request(
            lambda r: (
                r.method == "POST"
                and r.route is not None
                and "{webhook_token}" in r.route
                and "callback" not in r.route
            )
        )
        assert result.message is not None and result.message.content == "thought it over"


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.text()


async def test_bad_requests_never_reach_the_bot() -> None:
    client = discord.Client(intents=discord.Intents.none())
    seen: list[discord.Interaction[Any]] = []

    async def on_interaction(interaction: discord.Interaction[Any]) -> None:
        seen.append(interaction)

    client.event(on_interaction)
    options = {"max_body_size": 4096}
    async with HttpOfflineDiscord(client, app_options=options) as offline:
        alice = offline.add_member("alice")
        url, signer = offline.endpoint_url(), offline.signer
        payload = offline.make_interaction_payload(
            alice, discord.InteractionType.component, {"custom_id": "x", "component_type": 2}
        )
        body = json.dumps(payload).encode()
        good = signer.headers(body)
        stranger = InteractionSigner().headers(body)
        old = signer.headers(body, timestamp=int(time.time()) - 3600)
        tampered = signer.headers(body)
        cases = {
            "no signature": (body, {}),
            "another key": (body, stranger),
            "an old timestamp": (body, old),
            "a changed body": (body.replace(b"x", b"y"), tampered),
            "a timestamp that is not a number": (body, {**good, "X-Signature-Timestamp": "soon"}),
            "a signature that is not hex": (body, {**good, "X-Signature-Ed25519": "zz"}),
        }
        for name, (sent, headers) in cases.items():
            assert (await post(url, sent, headers))[0] == 401, name
        big = b"{" + b" " * 5000 + b"}"
        assert (await post(url, big, signer.headers(big)))[0] == 413
        for junk in (b"{not json", b"[1, 2]", b'{"type": 3}', b'{"id": "1"}', b'{"type": "x"}'):
            assert (await post(url, junk, signer.headers(junk)))[0] == 400, junk
        ping = b'{"type": 1, "id": "1", "application_id": "2", "token": "t", "version": 1}'
        assert await post(url, ping, signer.headers(ping)) == (200, '{"type":1}')
        assert seen == []
        assert not any(r.route == CALLBACK for r in offline.requests)


async def test_healthz_and_a_graceful_shutdown_that_answers_what_is_in_flight() -> None:
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    release = asyncio.Event()
    started = asyncio.Event()

    @tree.command(description="Wait for a signal")
    async def hold(interaction: discord.Interaction[Any]) -> None:
        started.set()
        await release.wait()
        await interaction.response.send_message("released")

    async with HttpOfflineDiscord(client) as offline:
        alice = offline.add_member("alice")
        health = offline.endpoint_url().replace("/interactions", "/healthz")
        async with aiohttp.ClientSession() as http:
            async with http.get(health) as r:
                assert r.status == 200
            held = await offline.slash_command(alice, "hold", wait=False)
            await asyncio.wait_for(started.wait(), 30)  # in flight, however busy the machine
            closing = asyncio.create_task(offline.logout(client))
            await asyncio.sleep(0.2)
            assert not closing.done()  # waiting for the interaction in flight
            release.set()
            await closing
            with pytest.raises(aiohttp.ClientConnectionError):
                async with aiohttp.ClientSession() as fresh, fresh.get(health):
                    pass
        await held.wait_answered(1)
        assert held.message is not None and held.message.content == "released"
        assert offline.statuses[held.id] == 200


class Slow(AbstractSession[None]):
    release: asyncio.Event

    async def start(self) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="go", custom_id=self.custom_id.push("go").build()))
        assert self.start_interaction is not None
        await self.start_interaction.response.send_message("ready", view=view)

    async def handle_button(self, interaction: discord.Interaction[Any]) -> bool:
        await Slow.release.wait()
        await interaction.edit_original_response(content="done at last")
        return True


async def test_the_managers_deferral_is_the_http_answer() -> None:
    clock = ManualClock()
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    manager = SessionManager(client, clock=clock)
    Slow.release = asyncio.Event()

    @tree.command(description="Start a slow session")
    async def slow(interaction: discord.Interaction[Any]) -> None:
        await manager.start(Slow(interaction))

    async with HttpOfflineDiscord(client, clock=clock) as offline:
        alice = offline.add_member("alice")
        started = await offline.slash_command(alice, "slow")
        assert started.message is not None
        click = await offline.click(alice, started.message, label="go", wait=False)
        await asyncio.sleep(0.1)
        await clock.advance(manager.defer_after + 0.1)  # the manager's watchdog defers
        await click.wait_answered(2)
        assert click.response is not None
        assert click.response.type is discord.InteractionResponseType.deferred_message_update
        assert offline.statuses[click.id] == 200
        Slow.release.set()
        await offline.wait_for_request(lambda r: r.method == "PATCH", timeout=2)
        assert started.message.content == "done at last"
        assert callbacks(offline, click) == [200]
    await manager.aclose()
