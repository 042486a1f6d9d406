"""The recorder: confirmed outbox rows marked off the worker's thread, none lost when recording fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from broker import recorder
from broker.recorder import Recorder


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_rows_handed_over_are_recorded_on_its_thread_in_the_order_handed() -> None:
    recorded: list[tuple[str, list[int]]] = []
    rec = Recorder(lambda ids: recorded.append((threading.current_thread().name, list(ids))))
    rec.start()
    rec.hand([1, 2])
    rec.hand([3])
    _until(lambda: sum(len(ids) for _, ids in recorded) == 3)
    assert [i for _, ids in recorded for i in ids] == [1, 2, 3]
    assert {name for name, _ in recorded} == {"recorder"}
    assert rec.unrecorded() == set()
    assert rec.take_back() == []


def test_rows_being_recorded_count_as_unrecorded_until_their_commit() -> None:
    """The worker must not publish such a row again (a resend of its message): it is pending in the store."""
    release = threading.Event()
    started = threading.Event()

    def slow(ids: list[int]) -> None:
        started.set()
        release.wait(5)

    rec = Recorder(slow)
    rec.start()
    rec.hand([7])
    started.wait(5)
    rec.hand([8])
    assert rec.unrecorded() == {7, 8}
    release.set()
    _until(lambda: rec.unrecorded() == set())
    rec.take_back()


def test_a_failed_recording_keeps_its_rows_and_tries_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "RETRY_AFTER_S", 0.01)
    attempts: list[list[int]] = []

    def flaky(ids: list[int]) -> None:
        attempts.append(list(ids))
        if len(attempts) == 1:
            raise ConnectionError("the store went away")

    rec = Recorder(flaky)
    rec.start()
    rec.hand([1, 2])
    _until(lambda: len(attempts) >= 2 and rec.unrecorded() == set())
    assert attempts[0] == [1, 2] and attempts[1][:2] == [1, 2], "the same rows again, first"
    rec.take_back()


def test_take_back_stops_it_and_returns_what_it_has_not_recorded() -> None:
    """At shutdown the worker records the rest itself: nothing handed over is dropped."""

    def never(ids: list[int]) -> None:
        raise ConnectionError("the store is down")

    rec = Recorder(never)
    rec.start()
    rec.hand([4, 5])
    rec.hand([6])
    time.sleep(0.05)
    assert sorted(rec.take_back()) == [4, 5, 6]
    assert rec.unrecorded() == set()


def test_a_recorder_never_started_gives_back_what_it_was_handed() -> None:
    rec = Recorder(lambda ids: None)
    rec.hand([1])
    assert rec.take_back() == [1]
