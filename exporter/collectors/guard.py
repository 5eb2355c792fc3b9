"""Runs each collector in isolation: a failing collector costs its own series, not the scrape."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import Metric

from exporter.collectors.errors import ErrorCounts

log = logging.getLogger(__name__)


class Collector(Protocol):
    """What client_python's registry calls on every scrape."""

    def collect(self) -> Iterable[Metric]: ...


@dataclass(frozen=True)
class CollectorRun:
    """How the last run of one collector went."""

    duration_seconds: float
    success: bool


class CollectorRuns:
    """The last run of each guarded collector, for the self collector to report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, CollectorRun] = {}

    def record(self, name: str, run: CollectorRun) -> None:
        with self._lock:
            self._runs[name] = run

    def snapshot(self) -> dict[str, CollectorRun]:
        with self._lock:
            return dict(self._runs)


class GuardedCollector:
    """Materialises ``inner.collect()`` under a timer and a catch-all, recording the outcome."""

    def __init__(self, name: str, inner: Collector, runs: CollectorRuns, errors: ErrorCounts) -> None:
        self.name = name
        self._inner = inner
        self._runs = runs
        self._errors = errors
        self._failing = False

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            families = list(self._inner.collect())
        except Exception:
            self._errors.add(self.name)
            self._runs.record(self.name, CollectorRun(time.perf_counter() - started, success=False))
            if not self._failing:
                log.exception(
                    "collector failed; its series are left out until it recovers",
                    extra={"collector": self.name},
                )
            self._failing = True
            return
        if self._failing:
            log.info("collector recovered", extra={"collector": self.name})
        self._failing = False
        self._runs.record(self.name, CollectorRun(time.perf_counter() - started, success=True))
        yield from families
