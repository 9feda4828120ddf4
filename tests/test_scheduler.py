from __future__ import annotations

import pytest

from nyx_sessions.scheduler import DeadlineScheduler
from nyx_sessions.testing.clock import ManualClock


def make() -> tuple[ManualClock, DeadlineScheduler, list[str]]:
    clock = ManualClock()
    fired: list[str] = []
    return clock, DeadlineScheduler(clock, fired.append), fired


def test_fires_in_deadline_order_with_one_timer() -> None:
    clock, scheduler, fired = make()
    now = clock.now()
    for key, delay in [("c", 30.0), ("a", 10.0), ("b", 20.0)]:
        scheduler.schedule(key, now + delay)
    assert clock.pending == 1  # one timer handle, whatever the number of keys
    clock.advance_nowait(15)
    assert fired == ["a"]
    clock.advance_nowait(100)
    assert fired == ["a", "b", "c"]
    assert len(scheduler) == 0
    assert clock.pending == 0


def test_reschedule_later_skips_the_stale_entry() -> None:
    clock, scheduler, fired = make()
    now = clock.now()
    scheduler.schedule("a", now + 10)
    scheduler.schedule("a", now + 50)  # a sliding TTL refresh
    clock.advance_nowait(20)
    assert fired == []
    assert scheduler.deadline("a") == now + 50
    clock.advance_nowait(40)
    assert fired == ["a"]


def test_reschedule_earlier_rearms() -> None:
    clock, scheduler, fired = make()
    now = clock.now()
    scheduler.schedule("a", now + 100)
    scheduler.schedule("a", now + 5)
    clock.advance_nowait(6)
    assert fired == ["a"]


def test_cancel() -> None:
    clock, scheduler, fired = make()
    now = clock.now()
    scheduler.schedule("a", now + 10)
    scheduler.schedule("b", now + 20)
    scheduler.cancel("a")
    assert "a" not in scheduler
    clock.advance_nowait(30)
    assert fired == ["b"]
    scheduler.cancel("missing")  # no error


def test_refreshes_do_not_grow_the_heap_without_bound() -> None:
    clock, scheduler, _ = make()
    now = clock.now()
    for i in range(50_000):
        scheduler.schedule("hot", now + 10 + i * 0.001)
    assert len(scheduler._heap) <= 2 * len(scheduler) + 1024 + 1


def test_a_failing_callback_is_logged_and_the_rest_still_fire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    fired: list[str] = []

    def callback(key: str) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        fired.append(key)

    scheduler = DeadlineScheduler(clock, callback)
    scheduler.schedule("bad", clock.now() + 1)
    scheduler.schedule("good", clock.now() + 2)
    clock.advance_nowait(5)
    assert fired == ["good"]
    assert "boom" in caplog.text


def test_close_disarms() -> None:
    clock, scheduler, fired = make()
    scheduler.schedule("a", clock.now() + 1)
    scheduler.close()
    clock.advance_nowait(5)
    assert fired == []
    assert clock.pending == 0
