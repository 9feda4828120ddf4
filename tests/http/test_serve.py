"""``python -m nyx_sessions serve``: loading the bot, and configuration from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import discord
import pytest

from nyx_sessions.cli.serve import load_client

ROOT = Path(__file__).resolve().parents[2]


def build() -> discord.Client:
    return discord.Client(intents=discord.Intents.none())


async def build_later() -> discord.Client:
    return build()


CLIENT = build()
NOT_A_CLIENT = 3


@pytest.mark.parametrize("attribute", ["CLIENT", "build", "build_later"])
async def test_the_target_is_a_client_or_a_factory(attribute: str) -> None:
    client = await load_client(f"tests.http.test_serve:{attribute}")
    assert isinstance(client, discord.Client)


@pytest.mark.parametrize("target", ["tests.http.test_serve", "tests.http.test_serve:NOT_A_CLIENT"])
async def test_a_bad_target_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match=r"module:attribute|not a discord\.Client"):
        await load_client(target)


def test_missing_configuration_is_named_and_secrets_never_printed() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "DISCORD_PUBLIC_KEY")}
    env["DISCORD_TOKEN"] = "secret-token-value"
    done = subprocess.run(
        [sys.executable, "-m", "nyx_sessions", "serve", "tests.http.test_serve:CLIENT"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "DISCORD_PUBLIC_KEY" in done.stderr
    assert "secret-token-value" not in done.stdout + done.stderr
