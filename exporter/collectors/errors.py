"""Thread-safe error counts that collectors raise and the self collector reports."""

from __future__ import annotations

import threading
from collections import Counter


class ErrorCounts:
    """Monotonic counts keyed by a tuple of label values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, ...]] = Counter()

    def add(self, *key: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def snapshot(self) -> dict[tuple[str, ...], int]:
        with self._lock:
            return dict(self._counts)
