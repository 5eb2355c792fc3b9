"""Template variables substituted the way Grafana 10 does for a Prometheus datasource (pure functions).

Follows Grafana's ``templateSrv.replace`` syntaxes (``$var``, ``${var}``, ``${var:format}``,
``[[var]]``), the Prometheus datasource's default escaping of values (``interpolateQueryExpr``), the
``regex``/``raw``/``pipe``/``csv`` formats, ``All`` (the variable's ``allValue`` verbatim, else every
option), and the built-in ``$__interval``, ``$__rate_interval`` and ``$__range`` family.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALL = "$__all"
# Grafana's variableRegex: $var, [[var:format]], ${var.fieldPath:format}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}")
_REGEX_META = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_PROMETHEUS_REGEX_META = re.compile(r"[$^*{}\[\]+?.()|]")
# rangeutil.roundInterval: (below this many ms, use this interval).
_ROUNDED_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000), (3_500, 2_000),
    (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000), (45_000, 30_000),
    (90_000, 60_000), (210_000, 120_000), (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000),
    (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)  # fmt: skip
_ROUNDED_MAX_MS = 31_536_000_000


@dataclass(frozen=True)
class Selection:
    """A variable's current value(s) and what Grafana needs to format them.

    ``values`` holds the chosen values, or ``(ALL,)`` for All; ``options`` every value the variable
    offers, which All stands for when the variable has no ``all_value``.
    """

    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    options: tuple[str, ...] = ()

    @property
    def is_all(self) -> bool:
        return ALL in self.values


def regular_escape(value: str) -> str:
    """``prometheusRegularEscape``: single-value variables in a PromQL string."""
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def special_regex_escape(value: str) -> str:
    """``prometheusSpecialRegexEscape``: regex metacharacters escaped for a PromQL ``=~"..."`` string."""
    return _PROMETHEUS_REGEX_META.sub(lambda m: "\\\\" + m[0], value.replace("\\", "\\\\\\\\"))


def regex_escape(value: str) -> str:
    """``kbn.regexEscape``, the ``:regex`` format (one backslash: outside a PromQL string)."""
    return _REGEX_META.sub(lambda m: "\\" + m[0], value)


def _prometheus_default(values: Sequence[str], selection: Selection) -> str:
    if not selection.multi and not selection.include_all:
        return regular_escape(values[0]) if values else ""
    escaped = [special_regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def format_selection(selection: Selection, fmt: str | None) -> str:
    """The text one variable reference becomes, for ``fmt`` (None: the Prometheus datasource's default)."""
    if selection.is_all:
        if selection.all_value is not None and fmt not in ("text", "percentencode"):
            return selection.all_value
        values: Sequence[str] = selection.options
    else:
        values = selection.values
    if fmt is None:
        return _prometheus_default(values, selection)
    if fmt == "regex":
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt in ("raw", "text"):
        return ",".join(values) if not selection.is_all or fmt == "raw" else "All"
    raise ValueError(f"variable format {fmt!r} is not supported by the preview")


def interpolate(text: str, variables: Mapping[str, Selection], builtins: Mapping[str, str]) -> str:
    """``text`` with every known variable replaced; unknown references stay as written, as in Grafana."""

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[6]
        if name in builtins:
            return builtins[name]
        if name in variables:
            return format_selection(variables[name], fmt)
        return match[0]

    return _VARIABLE.sub(replace, text)


def references(text: str) -> set[str]:
    """Names of the variables ``text`` refers to."""
    return {m[1] or m[2] or m[4] for m in _VARIABLE.finditer(text)}


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's ``rangeutil.roundInterval``: a raw interval snapped to a readable one."""
    for below, rounded in _ROUNDED_MS:
        if interval_ms < below:
            return rounded
    return _ROUNDED_MAX_MS


def format_duration(ms: int) -> str:
    """A PromQL duration for ``ms`` milliseconds, in the largest unit that divides it."""
    if ms % 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(text: str) -> int:
    """Milliseconds in a Grafana/Prometheus duration such as ``15s``, ``1m30s`` or ``500ms``."""
    units = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)


@dataclass(frozen=True)
class Intervals:
    """The interval variables of one panel's queries, in milliseconds."""

    interval_ms: int
    rate_interval_ms: int
    range_ms: int

    def builtins(self) -> dict[str, str]:
        """Grafana's built-in variables for these intervals."""
        range_s = round(self.range_ms / 1000)
        return {
            "__interval": format_duration(self.interval_ms),
            "__interval_ms": str(self.interval_ms),
            # The Prometheus datasource writes these two in seconds.
            "__rate_interval": f"{self.rate_interval_ms / 1000:g}s",
            "__range": f"{range_s}s",
            "__range_s": str(range_s),
            "__range_ms": str(self.range_ms),
        }


def intervals(range_ms: int, max_data_points: int, scrape_interval_ms: int) -> Intervals:
    """``$__interval`` as Grafana computes it for a panel, floored at the datasource's scrape interval,
    and ``$__rate_interval = max($__interval + scrape interval, 4 * scrape interval)``.
    """
    interval = max(round_interval_ms(range_ms / max(max_data_points, 1)), scrape_interval_ms)
    return Intervals(interval, max(interval + scrape_interval_ms, 4 * scrape_interval_ms), range_ms)
