"""Kubernetes ``resource.Quantity`` text as the HPA controller reads it: milli-units, rounded up.

The controller compares metrics and targets as ``Quantity.MilliValue()`` (k8s.io/apimachinery
``pkg/api/resource/quantity.go``: ``ScaledValue(Milli)``, which rounds up), so ``0.0001`` is 1 milli.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_PATTERN = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]*)$")
INT64_MAX = 2**63 - 1


class QuantityError(ValueError):
    """Text that is not a Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """The exact value of a quantity string (``500m``, ``1.5``, ``2Gi``, ``1e3``)."""
    match = _PATTERN.match(text.strip())
    if match is None:
        raise QuantityError(f"{text!r} is not a quantity (e.g. 60, 500m, 1.5k, 2Gi)")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise QuantityError(f"{text!r} is not a quantity") from None
    if suffix in _DECIMAL_SUFFIXES:
        return value * Decimal(10) ** _DECIMAL_SUFFIXES[suffix]
    if suffix in _BINARY_SUFFIXES:
        return value * Decimal(2 ** _BINARY_SUFFIXES[suffix])
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        exponent = int(suffix[1:])
        if abs(exponent) > 40:
            raise QuantityError(f"{text!r}: exponent out of range")
        return value * Decimal(10) ** exponent
    raise QuantityError(f"{text!r}: unknown suffix {suffix!r} (use n, u, m, k, M, G, T, Ki, Mi, Gi, ...)")


def milli_value(value: Decimal | float) -> int:
    """``Quantity.MilliValue()``: the value in thousandths, rounded up, saturating at int64."""
    decimal = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if not decimal.is_finite():
        raise QuantityError(f"{value} is not finite")
    milli = int((decimal * 1000).to_integral_value(rounding=ROUND_CEILING))
    return max(-INT64_MAX - 1, min(INT64_MAX, milli))


def parse_milli(text: str) -> int:
    """A quantity string as the controller's milli-value."""
    return milli_value(parse_quantity(text))


def format_milli(milli: int) -> str:
    """Milli-units as quantity text: ``1500`` -> ``1500m``, ``60000`` -> ``60``."""
    return f"{milli}m" if milli % 1000 else str(milli // 1000)
