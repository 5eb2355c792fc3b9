"""Load profiles for simulated GPUs: utilisation (0..1) as a function of seconds since start.

Spec grammar (one profile per ``--simulated-profile``)::

    constant:0.6
    step:from=0.2,to=0.8,at=60
    ramp:from=0,to=1,duration=300          (holds ``to`` afterwards)
    sine:min=0.2,max=0.9,period=120[,phase=0]
    csv:PATH                               (columns ``seconds,utilization``; linear in between,
                                            first/last value held outside the series)
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ProfileError(ValueError):
    """A profile spec or CSV series that cannot be used; the message says what and where."""


class LoadProfile(Protocol):
    """Utilisation ratio at ``t`` seconds since the simulation started."""

    def utilization(self, t: float) -> float: ...


@dataclass(frozen=True)
class Constant:
    value: float

    def utilization(self, t: float) -> float:
        return self.value


@dataclass(frozen=True)
class Step:
    before: float
    after: float
    at: float

    def utilization(self, t: float) -> float:
        return self.before if t < self.at else self.after


@dataclass(frozen=True)
class Ramp:
    start: float
    end: float
    duration: float

    def utilization(self, t: float) -> float:
        if t <= 0:
            return self.start
        if t >= self.duration:
            return self.end
        return self.start + (self.end - self.start) * t / self.duration


@dataclass(frozen=True)
class Sine:
    low: float
    high: float
    period: float
    phase: float = 0.0

    def utilization(self, t: float) -> float:
        middle = (self.low + self.high) / 2
        amplitude = (self.high - self.low) / 2
        return middle + amplitude * math.sin(2 * math.pi * (t + self.phase) / self.period)


@dataclass(frozen=True)
class Series:
    """A recorded utilisation series, interpolated linearly between points."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def utilization(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def _ratio(name: str, text: str) -> float:
    value = _number(name, text)
    if not 0.0 <= value <= 1.0:
        raise ProfileError(f"{name}={text} is outside 0..1 (utilisation is a ratio)")
    return value


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ProfileError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise ProfileError(f"{name}={text} is not finite")
    return value


def _positive(name: str, text: str) -> float:
    value = _number(name, text)
    if value <= 0:
        raise ProfileError(f"{name}={text} must be greater than 0")
    return value


def _params(
    kind: str, text: str, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ProfileError(f"{kind}: expected key=value, got {part!r}")
        if key not in required | optional:
            raise ProfileError(
                f"{kind}: unknown parameter {key!r} (known: {', '.join(sorted(required | optional))})"
            )
        if key in params:
            raise ProfileError(f"{kind}: parameter {key!r} given twice")
        params[key] = value
    missing = required - params.keys()
    if missing:
        raise ProfileError(f"{kind}: missing {', '.join(sorted(missing))}")
    return params


def _constant(body: str) -> LoadProfile:
    return Constant(_ratio("value", body.strip()))


def _step(body: str) -> LoadProfile:
    p = _params("step", body, {"from", "to", "at"})
    return Step(_ratio("from", p["from"]), _ratio("to", p["to"]), _number("at", p["at"]))


def _ramp(body: str) -> LoadProfile:
    p = _params("ramp", body, {"from", "to", "duration"})
    return Ramp(_ratio("from", p["from"]), _ratio("to", p["to"]), _positive("duration", p["duration"]))


def _sine(body: str) -> LoadProfile:
    p = _params("sine", body, {"min", "max", "period"}, frozenset({"phase"}))
    low, high = _ratio("min", p["min"]), _ratio("max", p["max"])
    if low > high:
        raise ProfileError(f"sine: min={p['min']} is above max={p['max']}")
    return Sine(low, high, _positive("period", p["period"]), _number("phase", p.get("phase", "0")))


def parse_series_csv(text: str, source: str = "<csv>") -> Series:
    """Parse ``seconds,utilization`` rows (header required); errors name the line."""
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:2]] != ["seconds", "utilization"]:
        raise ProfileError(f"{source}:1: header must start with 'seconds,utilization'")
    times: list[float] = []
    values: list[float] = []
    for line_number, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise ProfileError(f"{source}:{line_number}: expected seconds,utilization")
        try:
            t = _number("seconds", row[0].strip())
            v = _ratio("utilization", row[1].strip())
        except ProfileError as exc:
            raise ProfileError(f"{source}:{line_number}: {exc}") from None
        if times and t <= times[-1]:
            raise ProfileError(f"{source}:{line_number}: seconds must increase ({t} after {times[-1]})")
        times.append(t)
        values.append(v)
    if not times:
        raise ProfileError(f"{source}: no data rows")
    return Series(tuple(times), tuple(values))


def _csv(body: str) -> LoadProfile:
    path = Path(body.strip())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"csv: cannot read {path}: {exc.strerror or exc}") from None
    return parse_series_csv(text, str(path))


_KINDS: Mapping[str, Callable[[str], LoadProfile]] = {
    "constant": _constant,
    "step": _step,
    "ramp": _ramp,
    "sine": _sine,
    "csv": _csv,
}


def parse_profile(spec: str) -> LoadProfile:
    """Parse one profile spec; raises ``ProfileError`` with a message fit for the user."""
    kind, sep, body = spec.strip().partition(":")
    if kind not in _KINDS:
        raise ProfileError(f"unknown load profile {kind!r} in {spec!r}: use one of {', '.join(_KINDS)}")
    if not sep or not body.strip():
        raise ProfileError(f"{kind}: parameters missing in {spec!r}")
    return _KINDS[kind](body)
