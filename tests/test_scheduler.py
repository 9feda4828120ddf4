from __future__ import annotations

import random

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


def test_a_refresh_to_a_later_deadline_leaves_the_heap_alone() -> None:
    clock, scheduler, fired = make()
    now = clock.now()
    scheduler.schedule("hot", now + 10)
    for i in range(1, 1000):
        scheduler.schedule("hot", now + 10 + i * 0.01)  # a click every 10 ms, sliding TTL
    assert scheduler._heap == [(now + 10, "hot")]  # one entry, from the first schedule
    clock.advance_nowait(10)  # the old entry surfaces: moved on, not fired
    assert fired == []
    assert scheduler._heap == [(now + 19.99, "hot")]
    assert clock.pending == 1
    clock.advance_nowait(9.99)
    assert fired == ["hot"]
    assert clock.pending == 0


def test_random_schedules_and_cancels_fire_like_a_plain_dict_of_deadlines() -> None:
    rng = random.Random(7)
    clock, scheduler, fired = make()
    model: dict[str, float] = {}
    keys = [f"k{i}" for i in range(12)]
    for _ in range(3000):
        action = rng.random()
        key = rng.choice(keys)
        if action < 0.6:
            when = clock.now() + rng.choice([0.5, 1.0, 2.0, 5.0]) * rng.random()
            scheduler.schedule(key, when)
            model[key] = when
        elif action < 0.75:
            scheduler.cancel(key)
            model.pop(key, None)
        else:
            before = list(fired)
            clock.advance_nowait(rng.random())
            due = sorted((when, key) for key, when in model.items() if when <= clock.now())
            assert fired[len(before) :] == [key for _, key in due]
            for _, key in due:
                del model[key]
        assert {key: scheduler.deadline(key) for key in model} == model
        assert len(scheduler) == len(model)
