"""Confirmed outbox rows marked sent off the worker's thread, on a connection of its own.

Marking a second's confirmed rows sent (and their messages delivered) rewrites a few hundred rows of `messages`,
each with a dozen indexes: 20-55 ms of waiting on PostgreSQL here, once a second, and every message arriving
meanwhile waited behind it (the bench's p99 at 200 msg/s). The worker hands the ids over and goes on; this thread
records them. A mark only matters after the relay's grace (tens of seconds): until then nothing reads it but
the worker itself, which asks `unrecorded()`. A mark lost in a crash means the relay publishes the row again under
the same message id, which consumers de-duplicate, as before.

Failed publishes are not handed over: their next attempt is scheduled with the batch that records them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)
RETRY_AFTER_S = 1.0  # a recording that failed (the store unavailable) is tried again after this long


class Recorder:
    """A thread that runs `record(ids)` (a transaction of its own) for the ids handed to it, in the order handed."""

    def __init__(self, record: Callable[[list[int]], None]) -> None:
        self._record = record
        self._changed = threading.Condition()
        self._waiting: list[int] = []  # handed over, not yet taken up
        self._recording: list[int] = []  # being recorded now
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def hand(self, ids: Iterable[int]) -> None:
        with self._changed:
            self._waiting.extend(ids)
            self._changed.notify_all()

    def unrecorded(self) -> set[int]:
        """Rows handed over whose mark is not committed yet (the worker must not publish them again)."""
        with self._changed:
            return {*self._waiting, *self._recording}

    def take_back(self) -> list[int]:
        """Stop; the ids not recorded, for the caller to record itself (the worker's settle(), at shutdown and
        in tests). Waits for a recording under way to end."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._changed:
            left, self._waiting = self._recording + self._waiting, []
            self._recording = []
            self._stopping = False
            return left

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                self._recording, self._waiting = self._waiting, []
            try:
                self._record(self._recording)
            except Exception:  # the store unavailable past the retries: keep them, try again later
                log.exception("recording confirmed outbox rows failed; trying again in %.0f s", RETRY_AFTER_S)
                with self._changed:
                    self._waiting[:0], self._recording = self._recording, []
                    self._changed.wait(RETRY_AFTER_S)
                continue
            with self._changed:
                self._recording = []
