"""Fixtures of the ready-made session tests: the offline Discord, a manual clock, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from nyx_sessions.testing import ManualClock, OfflineDiscord
from tests.stores.conftest import clock, redis_client, redis_server

__all__ = ["clock", "offline", "redis_client", "redis_server"]


@pytest.fixture
async def offline(clock: ManualClock) -> AsyncIterator[OfflineDiscord]:
    # The offline Discord shares the manual clock: interaction tokens run out (after 15
    # minutes) as the sessions' TTLs do, so tidying by message id is put to the test.
    async with OfflineDiscord(clock=clock) as offline:
        yield offline
