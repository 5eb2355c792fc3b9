"""A short in-memory window of samples per series, per scrape target."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from adapter.backends.exposition import Labels, Sample

SeriesKey = tuple[str, Labels]


@dataclass(frozen=True)
class WindowedSeries:
    """A series' mean over the window and the time of its newest sample."""

    name: str
    labels: Labels
    mean: float
    last_timestamp: float


class SeriesWindow:
    """Samples of one target's series for the last ``window_seconds``.

    A series missing from a successful scrape is dropped at once (as Prometheus marks it stale); when a
    scrape fails, the series keep their old samples, which age out of the window.
    """

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        # Per series its samples as timestamp, value, timestamp, value, ... in one array of doubles: a
        # fifth of the memory of a deque of tuples, which matters at thousands of series per adapter.
        self._series: dict[SeriesKey, array[float]] = {}

    def record(self, timestamp: float, samples: Iterable[Sample]) -> None:
        """Add one successful scrape taken at ``timestamp``."""
        seen: set[SeriesKey] = set()
        for sample in samples:
            key = (sample.name, sample.labels)
            seen.add(key)
            points = self._series.get(key)
            if points is None:
                self._series[key] = array("d", (timestamp, sample.value))
            else:
                points.append(timestamp)
                points.append(sample.value)
        for key in [key for key in self._series if key not in seen]:
            del self._series[key]
        self.prune(timestamp)

    def prune(self, now: float) -> None:
        """Forget samples older than the window."""
        horizon = now - self._window
        for key in list(self._series):
            points = self._series[key]
            old = 0
            while old < len(points) and points[old] < horizon:
                old += 2
            if old == len(points):
                del self._series[key]
            elif old:
                del points[:old]

    def fresh(self, now: float) -> list[WindowedSeries]:
        """Series with at least one sample within the window ending at ``now``, averaged over it."""
        return self.fresh_and_oldest(now)[0]

    def fresh_and_oldest(self, now: float) -> tuple[list[WindowedSeries], float]:
        """``fresh(now)``, and the time of the oldest sample it used (infinity if none).

        While that sample ``is_fresh`` and no scrape or prune changes the samples, ``fresh`` answers
        the same at any later time.
        """
        horizon = now - self._window
        result: list[WindowedSeries] = []
        oldest = math.inf
        for (name, labels), points in self._series.items():
            timestamps, values = points[0::2], points[1::2]
            earliest = min(timestamps)
            if earliest < horizon:
                kept = [
                    value for timestamp, value in zip(timestamps, values, strict=True) if timestamp >= horizon
                ]
                if not kept:
                    continue
                earliest = min(timestamp for timestamp in timestamps if timestamp >= horizon)
                mean = sum(kept) / len(kept)
            else:
                mean = sum(values) / len(values)
            oldest = min(oldest, earliest)
            result.append(WindowedSeries(name, labels, mean, points[-2]))
        return result, oldest

    def is_fresh(self, timestamp: float, now: float) -> bool:
        """Whether a sample taken at ``timestamp`` is within the window ending at ``now``."""
        return timestamp >= now - self._window
