"""Fixtures that most tests share: the offline Discord, a manual clock, a manager.

Every test also checks that no interaction got a second initial answer: the offline
Discord's record of REST calls is watched, and a test fails at teardown if any
interaction got more than one callback POST (the promise is "answered exactly once").
A test that answers twice on purpose (to test the refusal) says so with
``@pytest.mark.answers_twice``.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from nyx_sessions import SessionManager
from nyx_sessions.testing import ManualClock, OfflineDiscord
from nyx_sessions.testing.records import RecordedRequest
from nyx_sessions.testing.world import OfflineWorld

_CALLBACK = re.compile(r"^/interactions/(\d+)/[^/]+/callback$")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "answers_twice: the test answers an interaction twice on purpose"
    )


@pytest.fixture(autouse=True)
def answered_at_most_once(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Counter[int]]:
    """Count callback POSTs per interaction id in every offline Discord of the test."""
    posts: Counter[int] = Counter()
    record = OfflineWorld.record_request

    def counting(world: OfflineWorld, request: RecordedRequest) -> None:
        match = _CALLBACK.match(request.path)
        if request.method == "POST" and match is not None:
            posts[int(match[1])] += 1
        record(world, request)

    monkeypatch.setattr(OfflineWorld, "record_request", counting)
    yield posts
    if request.node.get_closest_marker("answers_twice") is not None:
        return
    twice = {interaction_id: n for interaction_id, n in posts.items() if n > 1}
    assert not twice, f"interactions answered more than once (callback POSTs): {twice}"


@pytest.fixture(autouse=True)
def collected() -> Iterator[None]:
    """Collect garbage after every test, so that a leaked socket fails the test that leaked it."""
    yield
    gc.collect()


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
