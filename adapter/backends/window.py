"""A short in-memory window of samples per series, per scrape target."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from adapter.backends.exposition import Labels, Sample, label_value

SeriesKey = tuple[str, Labels]


@dataclass(frozen=True)
class WindowedSeries:
    """A series' mean over the window and the time of its newest sample."""

    name: str
    labels: Labels
    mean: float
    last_timestamp: float

    def label(self, name: str) -> str:
        """The value of label ``name``; empty when absent."""
        return label_value(self.labels, name)


class SeriesWindow:
    """Samples of one target's series for the last ``window_seconds``.

    A series missing from a successful scrape is dropped at once (as Prometheus marks it stale); when a
    scrape fails, the series keep their old samples, which age out of the window.
    """

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._series: dict[SeriesKey, deque[tuple[float, float]]] = {}

    def record(self, timestamp: float, samples: Iterable[Sample]) -> None:
        """Add one successful scrape taken at ``timestamp``."""
        seen: set[SeriesKey] = set()
        for sample in samples:
            key = (sample.name, sample.labels)
            seen.add(key)
            self._series.setdefault(key, deque()).append((timestamp, sample.value))
        for key in [key for key in self._series if key not in seen]:
            del self._series[key]
        self.prune(timestamp)

    def prune(self, now: float) -> None:
        """Forget samples older than the window."""
        horizon = now - self._window
        for key in list(self._series):
            points = self._series[key]
            while points and points[0][0] < horizon:
                points.popleft()
            if not points:
                del self._series[key]

    def fresh(self, now: float) -> list[WindowedSeries]:
        """Series with at least one sample within the window ending at ``now``, averaged over it."""
        horizon = now - self._window
        result: list[WindowedSeries] = []
        for (name, labels), points in self._series.items():
            values = [value for timestamp, value in points if timestamp >= horizon]
            if values:
                result.append(WindowedSeries(name, labels, sum(values) / len(values), points[-1][0]))
        return result
