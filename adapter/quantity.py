"""Kubernetes ``resource.Quantity`` strings: parsing, and the canonical DecimalSI form the API emits.

Mirrors k8s.io/apimachinery ``pkg/api/resource/quantity.go`` (see docs/adapter-api.md): parsing rounds
non-zero values up (away from zero) to nano precision, and the canonical form uses the largest
suffix that keeps the number an integer, so 1.5 is ``1500m`` and 2000 is ``2k``.
"""

from __future__ import annotations

import decimal
import math
from decimal import ROUND_DOWN, ROUND_UP, Decimal

_CONTEXT = decimal.Context(prec=200, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_NANO = Decimal("1e-9")
_MILLI_LIMIT = 2**63 - 1
# BinarySI quantities are capped at int64 max, as Go's ParseQuantity does.
_BINARY_CAP = Decimal(2**63 - 1)

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SUFFIX_FOR_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_SUFFIX_CHARS = set("eEinumkKMGTP")
_DIGITS = set("0123456789")
_FORMAT_HELP = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ValueError):
    """Text that is not a Kubernetes quantity."""


def _split(text: str) -> tuple[bool, str, str, str]:
    """Sign, integer digits, fraction digits and suffix, as Go's ``parseQuantityString`` splits them."""
    positive = True
    pos, end = 0, len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(f"{text!r}: {_FORMAT_HELP}")
    return positive, num, denom, text[suffix_start:]


def _suffix_scale(suffix: str) -> tuple[int, int, bool]:
    """Base, exponent and whether the suffix is binary."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], False
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], True
    if len(suffix) > 1 and suffix[0] in "eE":
        exponent = suffix[1:]
        digits = exponent.lstrip("+-")
        if digits.isdigit() and len(exponent) - len(digits) <= 1 and len(digits) <= 9:
            return 10, int(exponent), False
    raise QuantityError(f"unable to parse quantity's suffix: {suffix!r}")


def parse_quantity(text: str) -> Decimal:
    """The exact value of a quantity string; non-zero values are rounded up (away from zero) to nano."""
    if not text:
        raise QuantityError("quantities must not be empty")
    positive, num, denom, suffix = _split(text)
    base, exponent, binary = _suffix_scale(suffix)
    magnitude = _CONTEXT.create_decimal(f"{num}.{denom or '0'}")
    scale = Decimal(base) ** exponent if base == 2 else Decimal(1).scaleb(exponent, _CONTEXT)
    value = _CONTEXT.multiply(magnitude, scale)
    if value != 0:
        value = value.quantize(_NANO, rounding=ROUND_UP, context=_CONTEXT)
    if binary and value > _BINARY_CAP:
        value = _BINARY_CAP
    return value if positive else -value


def canonical_quantity(value: Decimal) -> str:
    """The canonical DecimalSI string of ``value`` (first rounded up to nano, as parsing does)."""
    if not value.is_finite():
        raise QuantityError(f"quantities are finite, got {value}")
    if value == 0:
        return "0"
    rounded = abs(value).quantize(_NANO, rounding=ROUND_UP, context=_CONTEXT)
    mantissa_text, exponent = _mantissa_exponent(rounded)
    sign = "-" if value < 0 else ""
    suffix = _SUFFIX_FOR_EXPONENT.get(exponent)
    if suffix is None:
        # Go emits no suffix at all past "E" (1000E prints as "1"); an exponent keeps the number right.
        return f"{sign}{mantissa_text}e{exponent}"
    return f"{sign}{mantissa_text}{suffix}"


def _mantissa_exponent(value: Decimal) -> tuple[str, int]:
    """Integer mantissa and an exponent that is a multiple of 3, with as few trailing zeros as allowed."""
    sign_digits_exponent = value.normalize(_CONTEXT).as_tuple()
    digits = "".join(map(str, sign_digits_exponent.digits))
    exponent = int(sign_digits_exponent.exponent)
    pad = exponent % 3
    return str(int(digits + "0" * pad)), exponent - pad


def format_quantity(value: float | Decimal) -> str:
    """The API's string for a metric value: truncated to milli-units, as upstream adapters do.

    prometheus-adapter builds values with ``resource.NewMilliQuantity(int64(value*1000.0), DecimalSI)``;
    NaN becomes 0 as there; infinities are clamped to the int64 range instead of Go's undefined overflow.
    """
    if isinstance(value, float):
        scaled = value * 1000.0
        # Nearly every value: a fraction of a unit left over (so "m"), well within int64. NaN fails
        # both comparisons and goes on below.
        if -1e18 < scaled < 1e18 and (milli := int(scaled)) % 1000:
            return f"{milli}m"
        if math.isnan(value):
            return "0"
        # int() of a float truncates toward zero exactly, as Go's int64 conversion does; what overflows
        # to infinity (beyond ~1.8e305) is clamped with the infinities.
        milli = int(scaled) if math.isfinite(scaled) else (_MILLI_LIMIT if scaled > 0 else -_MILLI_LIMIT)
    else:
        if value.is_nan():
            return "0"
        if value.is_infinite():
            milli = _MILLI_LIMIT if value > 0 else -_MILLI_LIMIT
        else:
            milli = int(_CONTEXT.multiply(value, Decimal(1000)).to_integral_value(rounding=ROUND_DOWN))
    return canonical_milli(max(-_MILLI_LIMIT, min(_MILLI_LIMIT, milli)))


def canonical_milli(milli: int) -> str:
    """``canonical_quantity`` of ``milli`` thousandths in integer arithmetic.

    Every value of every answer is formatted; going through ``Decimal`` cost ~3 us a value, a third of
    building a thousand-pod answer. The largest suffix that keeps the number whole is ``m`` unless the
    thousandths make whole units, then the units' largest power of 1000.
    """
    if milli == 0:
        return "0"
    if milli % 1000:
        return f"{milli}m"
    units, exponent = milli // 1000, 0
    while units % 1000 == 0:
        units //= 1000
        exponent += 3
    # An int64 of thousandths is below 10**16 units: the exponent stops at 15 ("P"), within the table.
    return f"{units}{_SUFFIX_FOR_EXPONENT[exponent]}"
