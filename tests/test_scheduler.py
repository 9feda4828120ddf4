from __future__ import annotations

import random

import pytest

from nyx_sessions.scheduler import DeadlineScheduler
from nyx_sessions.testing.clock import ManualClock


class Item:
    """A scheduled thing, as the manager's ``LiveSession`` is one."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.due: float | None = None
        self.filed: float | None = None

    def __repr__(self) -> str:
        return self.session_id


class Harness:
    def __init__(self, width: float = 0.25) -> None:
        self.clock = ManualClock()
        self.items: dict[str, Item] = {}
        self.fired: list[str] = []
        self.scheduler = DeadlineScheduler[Item](
            self.clock, self.on_deadline, self.items.get, width=width
        )

    def on_deadline(self, item: Item) -> None:
        self.fired.append(item.session_id)

    def item(self, key: str) -> Item:
        if key not in self.items:
            self.items[key] = Item(key)
        return self.items[key]

    def schedule(self, key: str, delay: float) -> Item:
        item = self.item(key)
        self.scheduler.schedule(item, self.clock.now() + delay)
        return item

    def filings(self) -> int:
        """Keys filed in buckets or in the exact heap, stale ones included."""
        buckets = self.scheduler._buckets.values()
        return len(self.scheduler._soon) + sum(len(keys) for keys in buckets)


def test_fires_in_deadline_order_with_one_timer() -> None:
    h = Harness()
    for key, delay in [("c", 30.0), ("a", 10.0), ("b", 20.0)]:
        h.schedule(key, delay)
    assert h.clock.pending == 1  # one timer handle, whatever the number of keys
    h.clock.advance_nowait(15)
    assert h.fired == ["a"]
    h.clock.advance_nowait(100)
    assert h.fired == ["a", "b", "c"]
    assert len(h.scheduler) == 0
    assert h.clock.pending == 0
    assert all(item.due is None and item.filed is None for item in h.items.values())


def test_fires_at_the_deadline_itself_not_at_the_end_of_its_bucket() -> None:
    h = Harness(width=1.0)
    h.clock.advance_nowait(0.5)
    h.schedule("a", 10.125)
    h.schedule("b", 10.25)
    h.clock.advance_nowait(10.1249)
    assert h.fired == []
    h.clock.advance_nowait(0.0001)
    assert h.fired == ["a"]
    h.clock.advance_nowait(0.125)
    assert h.fired == ["a", "b"]


def test_reschedule_later_skips_the_stale_filing() -> None:
    h = Harness()
    item = h.schedule("a", 10)
    now = h.clock.now()
    h.schedule("a", 50)  # a sliding TTL refresh
    h.clock.advance_nowait(20)
    assert h.fired == []
    assert item.due == now + 50
    h.clock.advance_nowait(40)
    assert h.fired == ["a"]


def test_reschedule_earlier_rearms() -> None:
    h = Harness()
    h.schedule("a", 100)
    h.schedule("a", 5)
    h.clock.advance_nowait(6)
    assert h.fired == ["a"]
    h.clock.advance_nowait(200)  # its stale filing at 100 s fires nothing
    assert h.fired == ["a"]
    assert h.clock.pending == 0


def test_cancel() -> None:
    h = Harness()
    a = h.schedule("a", 10)
    h.schedule("b", 20)
    h.scheduler.cancel(a)
    assert a.due is None
    assert len(h.scheduler) == 1
    h.clock.advance_nowait(30)
    assert h.fired == ["b"]
    h.scheduler.cancel(h.item("missing"))  # never scheduled: no error
    assert len(h.scheduler) == 0


def test_cancelling_the_last_deadline_drops_every_filing_and_the_timer() -> None:
    h = Harness()
    item = h.schedule("a", 10)
    h.schedule("a", 5)  # filed twice
    h.scheduler.cancel(item)
    assert h.filings() == 0
    assert h.clock.pending == 0


def test_a_gone_item_is_skipped() -> None:
    h = Harness()
    h.schedule("a", 10)
    h.schedule("b", 10)
    del h.items["a"]  # dropped without a cancel: its key finds nothing
    h.clock.advance_nowait(11)
    assert h.fired == ["b"]


def test_a_filing_whose_key_now_names_another_item_is_skipped() -> None:
    h = Harness()
    old = h.schedule("a", 10)
    h.items["a"] = Item("a")  # the session was restored into a new entry, unscheduled
    h.clock.advance_nowait(11)
    assert h.fired == []
    assert old.due is not None  # the old entry is nobody's business any more


def test_refreshes_to_later_deadlines_add_no_filing() -> None:
    h = Harness()
    h.schedule("hot", 10)
    for i in range(1, 50_000):
        h.schedule("hot", 10 + i * 0.001)  # a click every millisecond, sliding TTL
    assert h.filings() == 1  # the first schedule's, moved on when it comes up
    assert len(h.scheduler) == 1


def test_an_old_filing_moves_on_when_it_comes_up() -> None:
    h = Harness()
    item = h.schedule("hot", 10)
    deadline = 0.0
    for i in range(1, 1000):
        h.schedule("hot", 10 + i * 0.01)  # a click every 10 ms, sliding TTL
        deadline = h.clock.now() + 10 + i * 0.01
    h.clock.advance_nowait(10)  # the old filing comes up: moved on, not fired
    assert h.fired == []
    assert item.filed == deadline
    assert h.filings() == 1
    assert h.clock.pending == 1
    h.clock.advance_nowait(9.99)
    assert h.fired == ["hot"]
    assert h.clock.pending == 0


def test_deadlines_far_apart_wait_in_buckets_not_in_the_heap() -> None:
    h = Harness(width=1.0)
    for i in range(1000):
        h.schedule(f"k{i}", 100 + i * 0.5)
    assert h.scheduler._soon == []
    assert len(h.scheduler._buckets) == 500
    h.clock.advance_nowait(100.2)
    assert h.fired == ["k0"]
    assert len(h.scheduler._soon) == 1  # only the bucket due now was opened
    h.clock.advance_nowait(1000)
    assert h.fired == [f"k{i}" for i in range(1000)]


def test_a_jump_over_many_buckets_fires_everything_in_order() -> None:
    h = Harness()
    rng = random.Random(3)
    delays = {f"k{i}": rng.uniform(1, 60) for i in range(2000)}
    for key, delay in delays.items():
        h.schedule(key, delay)
    h.clock.advance_nowait(3600)
    assert h.fired == sorted(delays, key=delays.__getitem__)
    assert h.filings() == 0
    assert h.clock.pending == 0


def test_a_failing_callback_is_logged_and_the_rest_still_fire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()

    def callback(item: Item) -> None:
        if item.session_id == "bad":
            raise RuntimeError("boom")
        h.fired.append(item.session_id)

    h.scheduler._callback = callback
    h.schedule("bad", 1)
    h.schedule("good", 2)
    h.clock.advance_nowait(5)
    assert h.fired == ["good"]
    assert "boom" in caplog.text


def test_close_disarms_and_forgets_every_deadline() -> None:
    h = Harness()
    a = h.schedule("a", 1)
    b = h.schedule("b", 100)
    h.clock.advance_nowait(0.9)  # a's bucket opened, b's not
    h.scheduler.close()
    h.clock.advance_nowait(500)
    assert h.fired == []
    assert h.clock.pending == 0
    assert len(h.scheduler) == 0
    assert (a.due, b.due) == (None, None)


def test_a_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="width"):
        DeadlineScheduler[Item](ManualClock(), print, dict[str, Item]().get, width=0)


@pytest.mark.parametrize("width", [0.25, 0.1, 1.0, 7.0])
def test_random_schedules_and_cancels_fire_like_a_plain_dict_of_deadlines(width: float) -> None:
    rng = random.Random(7)
    h = Harness(width)
    model: dict[str, float] = {}
    keys = [f"k{i}" for i in range(12)]
    for _ in range(3000):
        action = rng.random()
        key = rng.choice(keys)
        if action < 0.6:
            when = h.clock.now() + rng.choice([0.5, 1.0, 2.0, 5.0, 30.0]) * rng.random()
            h.scheduler.schedule(h.item(key), when)
            model[key] = when
        elif action < 0.75:
            h.scheduler.cancel(h.item(key))
            model.pop(key, None)
        else:
            before = len(h.fired)
            h.clock.advance_nowait(rng.random() * rng.choice([0.1, 1.0, 10.0]))
            due = sorted((when, key) for key, when in model.items() if when <= h.clock.now())
            assert h.fired[before:] == [key for _, key in due]
            for _, key in due:
                del model[key]
        assert {key: h.items[key].due for key in model} == model
        assert len(h.scheduler) == len(model)
        if model:
            armed = h.scheduler._armed_at
            assert armed is not None
            assert armed <= min(model.values())  # never late
