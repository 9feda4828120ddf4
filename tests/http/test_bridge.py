"""What the endpoint relies on in discord.py (see nyx_sessions.http.bridge).

These fail loudly when a discord.py release changes one of them; the endpoint tests
then fail too, less clearly.
"""

from __future__ import annotations

import contextvars
import inspect

import discord
import pytest
from discord.interactions import InteractionResponse
from discord.webhook import async_ as webhook_async

import nyx_sessions.http
from nyx_sessions.http.bridge import FirstResponseAdapter, parse_interaction

# The InteractionResponse methods that make a first response, and the callback types
# the endpoint may see from them.
RESPONDING = [
    "autocomplete",
    "defer",
    "edit_message",
    "launch_activity",
    "pong",
    "send_message",
    "send_modal",
]


def test_the_webhook_adapter_is_a_context_variable() -> None:
    context_var = webhook_async.async_context
    assert isinstance(context_var, contextvars.ContextVar)
    assert type(context_var.get()) is webhook_async.AsyncWebhookAdapter
    assert issubclass(FirstResponseAdapter, webhook_async.AsyncWebhookAdapter)


def test_create_interaction_response_keeps_its_signature() -> None:
    ours = inspect.signature(FirstResponseAdapter.create_interaction_response)
    theirs = inspect.signature(webhook_async.AsyncWebhookAdapter.create_interaction_response)
    assert list(theirs.parameters) == list(ours.parameters)
    for name, parameter in theirs.parameters.items():
        assert parameter.kind is ours.parameters[name].kind, name


@pytest.mark.parametrize("name", RESPONDING)
def test_every_first_response_goes_through_the_context_adapter(name: str) -> None:
    source = inspect.getsource(getattr(InteractionResponse, name))
    assert "async_context.get()" in source, name
    assert "adapter.create_interaction_response(" in source, name


def test_no_other_response_method_appeared() -> None:
    public = {
        name
        for name, value in vars(InteractionResponse).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    }
    assert public == set(RESPONDING)


async def test_the_gateway_parser_is_where_the_endpoint_feeds() -> None:
    client = discord.Client(intents=discord.Intents.none())
    parsers = client._connection.parsers
    assert parsers["INTERACTION_CREATE"] == client._connection.parse_interaction_create
    seen: list[discord.Interaction[discord.Client]] = []

    async def on_interaction(interaction: discord.Interaction[discord.Client]) -> None:
        seen.append(interaction)

    client.event(on_interaction)
    await client.__aenter__()  # gives the client its loop, without logging in
    waiter = client.wait_for("interaction", timeout=0)
    payload = {
        "id": "10",
        "application_id": "20",
        "type": 3,
        "token": "t",
        "version": 1,
        "channel_id": "30",
        "user": {"id": "40", "username": "u", "discriminator": "0", "avatar": None},
        "data": {"custom_id": "x", "component_type": 2},
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 1024,
    }
    parse_interaction(client, payload)
    interaction = await waiter
    assert interaction.id == 10 and interaction.type is discord.InteractionType.component
    await client.close()


def test_http_exports_are_sorted_and_complete() -> None:
    names = list(nyx_sessions.http.__all__)
    assert names == sorted(names)
    public = {
        attr
        for attr, value in vars(nyx_sessions.http).items()
        if not attr.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public <= set(names)
