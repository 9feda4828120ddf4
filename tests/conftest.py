"""Fixtures that most tests share: the offline Discord, a manual clock, a manager."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from nyx_sessions import SessionManager
from nyx_sessions.testing import ManualClock, OfflineDiscord


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def offline() -> AsyncIterator[OfflineDiscord]:
    async with OfflineDiscord() as offline:
        yield offline


@pytest.fixture
async def manager(offline: OfflineDiscord, clock: ManualClock) -> AsyncIterator[SessionManager]:
    manager = SessionManager(offline.client, clock=clock)
    try:
        yield manager
    finally:
        await manager.aclose()
