"""The pytest plugin of nyx-sessions: fixtures for testing bots in the offline Discord.

Installed with ``pip install "nyx-sessions[testing]"`` and loaded by pytest through the
``pytest11`` entry point, it gives every test these fixtures:

``offline_discord``
    An entered :class:`~nyx_sessions.testing.OfflineDiscord` for the client that the
    ``offline_client`` fixture returns (override it to test your own bot; the default
    is None: a plain client with the default intents).
``manual_clock``
    A :class:`~nyx_sessions.testing.ManualClock` for managers and TTLs.
``redis_url``
    The URL of a real ``redis-server`` started on a free 127.0.0.1 port for the test,
    stopped after it; the test fails with a clear message when the binary is missing.

The async fixtures need pytest-asyncio (part of the ``testing`` extra).
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator

import discord
import pytest

from nyx_sessions.testing.clock import ManualClock
from nyx_sessions.testing.offline import OfflineDiscord
from nyx_sessions.testing.redis_server import RedisServerMissingError, RedisServerProcess

# Loaded whenever nyx-sessions and pytest share an environment: without pytest-asyncio
# the async fixture says what to install rather than breaking pytest's start.
_HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None

__all__ = ["manual_clock", "offline_client", "offline_discord", "redis_url"]


@pytest.fixture
def manual_clock() -> ManualClock:
    """Return a clock that moves only when the test advances it."""
    return ManualClock()


@pytest.fixture
def offline_client() -> discord.Client | None:
    """Return the client or bot that ``offline_discord`` logs in; override it for your bot."""
    return None


if _HAS_PYTEST_ASYNCIO:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def offline_discord(
        offline_client: discord.Client | None,
    ) -> AsyncIterator[OfflineDiscord]:
        """Yield an offline Discord with ``offline_client`` logged in, closed after the test."""
        async with OfflineDiscord(offline_client) as offline:
            yield offline

else:  # pragma: no cover

    @pytest.fixture
    def offline_discord() -> None:
        """Fail: the fixture needs pytest-asyncio."""
        pytest.fail('offline_discord needs pytest-asyncio: pip install "nyx-sessions[testing]"')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Yield the URL of a real redis-server on a free 127.0.0.1 port, for this test only."""
    try:
        server = RedisServerProcess()
    except RedisServerMissingError as error:
        pytest.fail(str(error), pytrace=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
