"""Recorded metric series for offline replays: a CSV of metric values over time.

Format: a header ``time,<column>,...`` then one row per sample, ``time`` in seconds and increasing. A column
is named after the HPA metric it feeds:

- ``<metric>``: for Pods and Resource metrics the value every running pod reports (so also the average); for
  Object metrics the object's value; for External metrics the sum of the series.
- ``<metric>[<i>]``: the value pod ``i`` reports (pods counted from 0 in creation order); pods without a
  column, or with an empty cell, have no sample and count as missing, as the controller sees them.

Values are plain numbers in the metric's units (``gpu_utilization`` is percent, 0-100); for Resource metrics
with a Utilization target the number is the utilization in percent of the pod's request. An empty cell means
no sample at that time: the metric is invalid for that sync. Between rows the last row holds.
"""

from __future__ import annotations

import bisect
import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from kgm_common.yamlsource import SourceError

_COLUMN = re.compile(r"^(?P<metric>[^\[\]]+?)(?:\[(?P<pod>[0-9]+)\])?$")


class SeriesError(SourceError):
    """A series CSV that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Series:
    """Samples per column: ``columns[name]`` lines up with ``times``; ``None`` is an empty cell."""

    times: tuple[float, ...]
    columns: dict[str, tuple[float | None, ...]]

    @property
    def duration(self) -> float:
        """The time of the last row."""
        return self.times[-1]

    def _row(self, t: float) -> int | None:
        i = bisect.bisect_right(self.times, t) - 1
        return i if i >= 0 else None

    def value(self, column: str, t: float) -> float | None:
        """The sample of ``column`` in force at ``t`` (the last row at or before ``t``)."""
        values = self.columns.get(column)
        row = self._row(t)
        if values is None or row is None:
            return None
        return values[row]

    def metrics(self) -> set[str]:
        """The metric names the columns feed."""
        names = set()
        for column in self.columns:
            match = _COLUMN.match(column)
            if match:
                names.add(match.group("metric"))
        return names

    def pod_columns(self, metric: str) -> dict[int, str]:
        """Per-pod columns of ``metric``: pod index -> column name."""
        result = {}
        for column in self.columns:
            match = _COLUMN.match(column)
            if match and match.group("metric") == metric and match.group("pod") is not None:
                result[int(match.group("pod"))] = column
        return result


def parse_series(text: str, source: str = "<series>") -> Series:
    """Parse a series CSV; raises ``SeriesError`` naming the line."""
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if not header or header[0].strip() != "time":
        raise SeriesError(f"{source}:1: the header must start with 'time'")
    names = [h.strip() for h in header[1:]]
    if not names:
        raise SeriesError(f"{source}:1: no metric columns after 'time'")
    for name in names:
        if not name or not _COLUMN.match(name):
            raise SeriesError(f"{source}:1: bad column name {name!r} (use <metric> or <metric>[<pod index>])")
    if len(set(names)) != len(names):
        raise SeriesError(f"{source}:1: a column is named twice")
    times: list[float] = []
    values: list[list[float | None]] = [[] for _ in names]
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(names) + 1:
            raise SeriesError(f"{source}:{line}: expected {len(names) + 1} cells, got {len(row)}")
        t = _number(row[0], source, line, "time")
        if t is None:
            raise SeriesError(f"{source}:{line}: time is empty")
        if times and t <= times[-1]:
            raise SeriesError(f"{source}:{line}: time must increase ({t:g} after {times[-1]:g})")
        times.append(t)
        for column, cell in zip(values, row[1:], strict=True):
            column.append(_number(cell, source, line, "value"))
    if not times:
        raise SeriesError(f"{source}: no data rows")
    return Series(tuple(times), {name: tuple(column) for name, column in zip(names, values, strict=True)})


def _number(cell: str, source: str, line: int, what: str) -> float | None:
    text = cell.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SeriesError(f"{source}:{line}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SeriesError(f"{source}:{line}: {what} {text!r} is not finite")
    return value


def load_series(path: Path) -> Series:
    """Read and parse a series CSV file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeriesError(f"{path}: cannot read: {exc}") from None
    return parse_series(text, str(path))
