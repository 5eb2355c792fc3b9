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
from collections.abc import Callable, Sequence
from concurrent.futures import Future

Statvfs = Callable[[str], os.statvfs_result]
StatOutcome = os.statvfs_result | Exception
_Job = tuple[str, Future[StatOutcome]]


class StuckMountError(Exception):
    """statvfs on this path missed its deadline and has not returned since."""


class _Worker:
    """One thread running statvfs calls in the order they were queued."""

    def __init__(self, statvfs: Statvfs) -> None:
        self._statvfs = statvfs
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="statfs", daemon=True).start()

    def submit(self, paths: Sequence[str]) -> list[Future[StatOutcome]]:
        jobs: list[_Job] = [(path, Future()) for path in paths]
        self._jobs.put(jobs)
        return [future for _, future in jobs]

    def retire(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (jobs := self._jobs.get()) is not None:
            for path, future in jobs:
                if not future.set_running_or_notify_cancel():
                    continue
                # The outcome, error or not, is the result: the future then only ever raises for the wait.
                try:
                    outcome: StatOutcome = self._statvfs(path)
                except Exception as exc:  # noqa: BLE001 - one mount's failure is that mount's outcome
                    outcome = exc
                future.set_result(outcome)


class BoundedStatfs:
    """statvfs for many paths, each allowed ``timeout_seconds`` before its mount counts as stuck."""

    def __init__(self, timeout_seconds: float, statvfs: Statvfs = os.statvfs) -> None:
        self._timeout = timeout_seconds
        self._statvfs = statvfs
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._stuck: dict[str, Future[StatOutcome]] = {}

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
        call = self._stuck.get(path)
        if call is None:
            return False
        if not call.done():
            return True
        del self._stuck[path]
        return False

    def _run_batch(
        self, paths: Sequence[str], pending: list[int], outcomes: dict[int, StatOutcome]
    ) -> list[int]:
        """Runs ``pending`` on the worker; returns the indices still to run if a call hung."""
        worker = self._worker or _Worker(self._statvfs)
        self._worker = worker
        futures = worker.submit([paths[i] for i in pending])
        for position, (index, future) in enumerate(zip(pending, futures, strict=True)):
            try:
                outcomes[index] = future.result(timeout=self._timeout)
            except TimeoutError:
                self._stuck[paths[index]] = future
                for queued in futures[position + 1 :]:
                    queued.cancel()
                worker.retire()
                self._worker = None
                return [i for i in pending[position + 1 :] if paths[i] != paths[index]]
        return []
