"""Grafana's value formats for the units the dashboards use, for axes, legends and big numbers."""

from __future__ import annotations

import math

_SUFFIXED = {"percent": "%", "celsius": " °C", "s": " s"}
# unit -> (step between prefixes, prefixed units); a prefix's index is its power of the step.
_SCALED: dict[str, tuple[float, tuple[str, ...]]] = {
    "bytes": (1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB")),
    "binBps": (1024.0, ("B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s")),
    "watt": (1000.0, ("W", "kW", "MW", "GW")),
    "hertz": (1000.0, ("Hz", "kHz", "MHz", "GHz", "THz")),
    "joule": (1000.0, ("J", "kJ", "MJ", "GJ")),
    "short": (1000.0, ("", "K", "Mil", "Bil", "Tri")),
}


def _number(value: float) -> str:
    """About three significant digits, as Grafana's automatic decimals give."""
    magnitude = abs(value)
    if magnitude == 0 or magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_value(value: float, unit: str) -> str:
    """``value`` as Grafana shows it in ``unit`` (percentunit: 0..1 shown as %)."""
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{_number(value * 100)}%"
    if unit in _SUFFIXED:
        return f"{_number(value)}{_SUFFIXED[unit]}"
    if unit not in _SCALED:
        return _number(value)
    step, prefixes = _SCALED[unit]
    power = 0
    scaled = value
    while abs(scaled) >= step and power < len(prefixes) - 1:
        scaled /= step
        power += 1
    separator = "" if unit == "short" else " "
    return f"{_number(scaled)}{separator}{prefixes[power]}"
