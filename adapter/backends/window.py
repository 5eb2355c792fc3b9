"""A short in-memory window of samples per series, per scrape target."""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from adapter.backends.exposition import Labels, Sample

SeriesKey = tuple[str, Labels]


class WindowedSeries(NamedTuple):
    """A series' mean over the window and the time of its newest sample."""

    name: str
    labels: Labels
    mean: float
    last_timestamp: float


class SeriesWindow:
    """Samples of one target's series for the last ``window_seconds``.

    A series missing from a successful scrape is dropped at once (as Prometheus marks it stale); when a
    scrape fails, the series keep their old samples, which age out of the window. A series given twice
    in one scrape keeps its first sample, as Prometheus does, and a NaN value is no sample. Timestamps
    are those of successive scrapes, so they do not decrease.
    """

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        # The series of the latest successful scrape and the column of each, in column order (the order
        # they first appeared). Keys that are equal share one object, and so do equal label pairs within
        # the target.
        self._columns: dict[SeriesKey, int] = {}
        # A row per successful scrape in the window: its time in ``_times``, its values in ``_values``,
        # row after row, a column per series of ``_columns``; NaN before a series' first sample, which makes
        # each column NaN up to some row and a sample in every row after it (a series missing from a
        # scrape is dropped). Two arrays per target rather than an array per series: the cyclic GC has
        # a few objects per target to walk however many series it has, and a sample costs 8 bytes.
        self._times = array("d")
        self._values = array("d")

    def record(self, timestamp: float, samples: Iterable[Sample]) -> None:
        """Add one successful scrape taken at ``timestamp``."""
        values: dict[SeriesKey, float] = {}
        for sample in samples:
            if not math.isnan(sample.value):
                values.setdefault((sample.name, sample.labels), sample.value)
        if not values:
            self._clear()
            return
        if values.keys() != self._columns.keys():
            self._relayout(values)
        self._times.append(timestamp)
        self._values.fromlist([values[key] for key in self._columns])
        self.prune(timestamp)

    def prune(self, now: float) -> None:
        """Forget samples older than the window."""
        old = self._first_row_within(now)
        if old == len(self._times):
            self._clear()
        elif old:
            del self._times[:old]
            del self._values[: old * len(self._columns)]

    def fresh(self, now: float) -> list[WindowedSeries]:
        """Series with at least one sample within the window ending at ``now``, averaged over it."""
        return self.fresh_and_oldest(now)[0]

    def fresh_and_oldest(self, now: float) -> tuple[list[WindowedSeries], float]:
        """``fresh(now)``, and the time of the oldest sample it used (infinity if none).

        While that sample ``is_fresh`` and no scrape or prune changes the samples, ``fresh`` answers
        the same at any later time.
        """
        times = self._times
        first = self._first_row_within(now)
        width = len(self._columns)
        values = self._values[first * width :]
        result: list[WindowedSeries] = []
        oldest = math.inf
        for column, (name, labels) in enumerate(self._columns):
            samples = values[column::width]
            start = 0
            while start < len(samples) and math.isnan(samples[start]):
                start += 1
            if start == len(samples):
                continue
            oldest = min(oldest, times[first + start])
            # Summed oldest first, as sum() over the series' own samples would: the same float.
            mean = sum(samples[start:]) / (len(samples) - start)
            result.append(WindowedSeries(name, labels, mean, times[-1]))
        return result, oldest

    def is_fresh(self, timestamp: float, now: float) -> bool:
        """Whether a sample taken at ``timestamp`` is within the window ending at ``now``."""
        return timestamp >= now - self._window

    def _first_row_within(self, now: float) -> int:
        """The first row within the window ending at ``now``; all later ones are, as times only grow."""
        first = 0
        while first < len(self._times) and not self.is_fresh(self._times[first], now):
            first += 1
        return first

    def _clear(self) -> None:
        self._columns = {}
        del self._times[:]
        del self._values[:]

    def _relayout(self, values: dict[SeriesKey, float]) -> None:
        """Make the columns those of ``values``: series kept in their order, then new ones, NaN so far."""
        old_width = len(self._columns)
        kept = [key for key in self._columns if key in values]
        keys = [*kept, *interned(kept, [key for key in values if key not in self._columns])]
        sources = [self._columns.get(key) for key in keys]
        rows = [self._values[row * old_width : (row + 1) * old_width] for row in range(len(self._times))]
        self._values = array(
            "d", [math.nan if source is None else row[source] for row in rows for source in sources]
        )
        self._columns = {key: column for column, key in enumerate(keys)}


def interned(known: Sequence[SeriesKey], new: Iterable[SeriesKey]) -> list[SeriesKey]:
    """``new`` keys made of the objects of ``known`` where equal: names, label pairs and label sets.

    A target's series repeat the same labels (a GPU's ``uuid`` is on each of its series, ``namespace``
    and ``container`` on most): held once, they are most of the window's memory saved.
    """
    pairs = {pair: pair for _, labels in known for pair in labels}
    label_sets = {labels: labels for _, labels in known}
    result: list[SeriesKey] = []
    for name, labels in new:
        shared = label_sets.get(labels)
        if shared is None:
            shared = label_sets[labels] = tuple(pairs.setdefault(pair, pair) for pair in labels)
        result.append((sys.intern(name), shared))
    return result
