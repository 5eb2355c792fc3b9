"""statvfs(2) under a deadline, so a dead NFS server costs its own mount's series and not the scrape.

statvfs on a hard-mounted NFS share whose server is gone blocks in the kernel and cannot be
interrupted. The calls run on a worker thread; a call that misses the deadline leaves its worker
behind (a daemon thread, finished whenever the kernel lets go) and its path is reported stuck without
being tried again until that call returns, which is how node_exporter's ``mount-timeout`` behaves.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence

Statvfs = Callable[[str], os.statvfs_result]
StatOutcome = os.statvfs_result | Exception


class StuckMountError(Exception):
    """statvfs on this path missed its deadline and has not returned since."""


class _Batch:
    """Paths a worker stats in order, with the call it is in and when that call started.

    The scraping thread is woken once, when the whole batch is done; the position and start of the
    current call let it hold each call to its own deadline without a hand-off per path.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths
        self.outcomes: list[StatOutcome] = []
        self.done = threading.Event()
        # Guards the three below, so the caller never abandons a call other than the one it timed.
        self._lock = threading.Lock()
        self._position = 0
        # Until the worker takes the batch up, the first path's deadline runs from submission.
        self._started = time.monotonic()
        self._abandoned = False

    def run(self, statvfs: Statvfs) -> None:
        for position, path in enumerate(self.paths):
            with self._lock:
                if self._abandoned:
                    break
                self._position, self._started = position, time.monotonic()
            try:
                outcome: StatOutcome = statvfs(path)
            except Exception as exc:  # noqa: BLE001 - one mount's failure is that mount's outcome
                outcome = exc
            self.outcomes.append(outcome)
        self.done.set()

    def wait(self, timeout: float) -> int | None:
        """None once every path has its outcome; else the position of a call that has run ``timeout``
        seconds, after which no further call of the batch is started."""
        remaining = timeout
        while not self.done.wait(remaining):
            with self._lock:
                remaining = self._started + timeout - time.monotonic()
                if remaining <= 0:
                    self._abandoned = True
                    return self._position
        return None


class _Worker:
    """One thread running batches in the order they were queued."""

    def __init__(self, statvfs: Statvfs) -> None:
        self._statvfs = statvfs
        self._batches: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="statfs", daemon=True).start()

    def submit(self, paths: Sequence[str]) -> _Batch:
        batch = _Batch(paths)
        self._batches.put(batch)
        return batch

    def retire(self) -> None:
        self._batches.put(None)

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            batch.run(self._statvfs)


class BoundedStatfs:
    """statvfs for many paths, each allowed ``timeout_seconds`` before its mount counts as stuck."""

    def __init__(self, timeout_seconds: float, statvfs: Statvfs = os.statvfs) -> None:
        self._timeout = timeout_seconds
        self._statvfs = statvfs
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        # A stuck path's batch is done once its hung call has returned: the worker starts no other.
        self._stuck: dict[str, _Batch] = {}

    def stat_all(self, paths: Sequence[str]) -> list[StatOutcome]:
        """Per path in order: the statvfs result, or the exception (``StuckMountError`` if it hung)."""
        with self._lock:
            outcomes: dict[int, StatOutcome] = {}
            pending = [i for i, path in enumerate(paths) if not self._still_stuck(path)]
            while pending:
                pending = self._run_batch(paths, pending, outcomes)
        return [
            outcomes[i]
            if i in outcomes
            else StuckMountError(f"statvfs({path!r}) has not returned within {self._timeout}s")
            for i, path in enumerate(paths)
        ]

    def _still_stuck(self, path: str) -> bool:
        batch = self._stuck.get(path)
        if batch is None:
            return False
        if not batch.done.is_set():
            return True
        del self._stuck[path]
        return False

    def _run_batch(
        self, paths: Sequence[str], pending: list[int], outcomes: dict[int, StatOutcome]
    ) -> list[int]:
        """Runs ``pending`` on the worker; returns the indices still to run if a call hung."""
        worker = self._worker or _Worker(self._statvfs)
        self._worker = worker
        batch = worker.submit([paths[i] for i in pending])
        hung = batch.wait(self._timeout)
        if hung is None:
            outcomes.update(zip(pending, batch.outcomes, strict=True))
            return []
        # The hung call may return while this runs; only the outcomes before it are settled.
        outcomes.update(zip(pending[:hung], batch.outcomes[:hung], strict=True))
        stuck = paths[pending[hung]]
        self._stuck[stuck] = batch
        worker.retire()
        self._worker = None
        return [i for i in pending[hung + 1 :] if paths[i] != stuck]
