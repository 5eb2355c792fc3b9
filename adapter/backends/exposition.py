"""Reading the exporter's Prometheus text exposition: only the families the adapter computes from."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Collection, Iterator
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


def label_value(labels: Labels, name: str) -> str:
    """The value of label ``name``; empty when absent (Prometheus treats the two alike)."""
    for key, value in labels:
        if key == name:
            return value
    return ""


# A named tuple: one is built per sample of every scrape, several times faster than a frozen dataclass.
class Sample(NamedTuple):
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
    # Only "\n" ends a line: str.splitlines would also split on "\r" and other separators that may
    # stand unescaped inside label values.
    for line in text.split("\n"):
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


# How exporters write nearly every sample: ``name{label="value",...} number``, label values without
# escapes, no timestamp. Such lines are split by these expressions, several times faster than
# client_python's parser reads them. An exposition with any other sample line in the wanted families,
# or a counter among them (the parser renames a counter's samples by its TYPE line), is left to the
# parser whole, so what is accepted, rejected and returned, in which order, is what it decides.
_LABEL = r'(?:[a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*="[^"\\\n]*"'
_PLAIN_SAMPLE = re.compile(
    rf"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{(?P<labels>{_LABEL}(?:,{_LABEL})*,?)\}})? (?P<value>[^\s_]+)"
)
_PLAIN_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')
_COUNTER_TYPE = re.compile(r"#\s+TYPE\s+\S+\s+counter\b")


def _plain_value(text: str) -> float | None:
    """The number as client_python reads it (an int if it is one), or ``None`` if it is not one."""
    try:
        return float(int(text))
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _plain_samples(lines: list[str]) -> tuple[list[Sample], list[str]] | None:
    """The samples in ``lines`` and the comment lines among them; ``None`` if one needs the parser."""
    samples: list[Sample] = []
    comments: list[str] = []
    for line in lines:
        if line.startswith("#"):
            if _COUNTER_TYPE.match(line):
                return None
            comments.append(line)
            continue
        match = _PLAIN_SAMPLE.fullmatch(line)
        if match is None:
            return None
        value = _plain_value(match["value"])
        # Label names are few and repeat in every series the window keeps: one copy of each.
        pairs = [(sys.intern(name), text) for name, text in _PLAIN_LABEL.findall(match["labels"] or "")]
        labels = dict(pairs)
        # A label given twice is an error for the parser.
        if value is None or len(labels) != len(pairs):
            return None
        if not math.isnan(value):
            samples.append(Sample(match["name"], tuple(sorted(labels.items())), value))
    return samples, comments


def parse_exposition(text: str, names: Collection[str]) -> list[Sample]:
    """Samples of the metrics in ``names`` (sample names, e.g. ``gpu_allocation_info``); NaN dropped.

    Raises ``ExpositionError`` for malformed text in the wanted families.
    """
    wanted = list(_wanted_lines(text, names))
    plain = _plain_samples(wanted)
    samples, other = ([], wanted) if plain is None else plain
    body = "\n".join(other)
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
