"""Reading the exporter's Prometheus text exposition: only the families the adapter computes from."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


def label_value(labels: Labels, name: str) -> str:
    """The value of label ``name``; empty when absent (Prometheus treats the two alike)."""
    for key, value in labels:
        if key == name:
            return value
    return ""


@dataclass(frozen=True)
class Sample:
    """One exposed sample: metric name, labels sorted by name, value."""

    name: str
    labels: Labels
    value: float

    def label(self, name: str) -> str:
        """The value of label ``name``; empty when absent."""
        return label_value(self.labels, name)


class ExpositionError(ValueError):
    """The body is not valid Prometheus text exposition."""


def _wanted_lines(text: str, names: Collection[str]) -> Iterator[str]:
    """Lines of the wanted families, HELP/TYPE comments included.

    The text format is line-based (label values escape newlines), so dropping whole lines of other
    families leaves valid exposition; skipping them before the parser runs is what keeps a scrape of
    an exporter with host metrics on cheap.
    """
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and parts[2] in names:
                yield line
            continue
        end = len(line)
        for stop in ("{", " ", "\t"):
            found = line.find(stop)
            if 0 <= found < end:
                end = found
        if line[:end] in names:
            yield line


def parse_exposition(text: str, names: Collection[str]) -> list[Sample]:
    """Samples of the metrics in ``names`` (sample names, e.g. ``gpu_allocation_info``); NaN dropped.

    Raises ``ExpositionError`` for malformed text in the wanted families.
    """
    body = "\n".join(_wanted_lines(text, names))
    samples: list[Sample] = []
    try:
        for family in text_string_to_metric_families(body + "\n"):
            for sample in family.samples:
                if sample.name in names and not math.isnan(sample.value):
                    samples.append(
                        Sample(sample.name, tuple(sorted(sample.labels.items())), float(sample.value))
                    )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ExpositionError(f"malformed exposition: {exc}") from exc
    return samples
