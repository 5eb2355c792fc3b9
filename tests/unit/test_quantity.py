"""Quantity strings against vectors from k8s.io/apimachinery ``pkg/api/resource/quantity_test.go``."""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.quantity import (
    QuantityError,
    canonical_milli,
    canonical_quantity,
    format_quantity,
    parse_quantity,
)

INT64_MAX = 2**63 - 1


# TestQuantityParse: input -> decQuantity(mantissa, exponent), DecimalSI and DecimalExponent rows.
@pytest.mark.parametrize(
    ("text", "mantissa", "exponent"),
    [
        ("0", 0, 0),
        ("0n", 0, 0),
        ("0u", 0, 0),
        ("0m", 0, 0),
        ("0Ki", 0, 0),
        ("0k", 0, 0),
        ("0M", 0, 0),
        ("0T", 0, 0),
        ("1", 1, 0),
        ("1Ki", 1024, 0),
        ("7Mi", 7 * 1024 * 1024, 0),
        ("3Ei", 3 * 1024**6, 0),
        ("5n", 5, -9),
        ("4u", 4, -6),
        ("3m", 3, -3),
        ("8k", 8, 3),
        ("50k", 5, 4),
        ("7M", 7, 6),
        ("6G", 6, 9),
        ("40T", 4, 13),
        ("2P", 2, 15),
        ("1E", 1, 18),
        ("1E-3", 1, -3),
        ("1e3", 1, 3),
        ("1E18", 1, 18),
        ("100.035k", 100035, 0),
        ("0.001", 1, -3),
        ("0.0005k", 5, -1),
        ("0.00050k", 5, -1),
        ("0.5e-2", 5, -3),
        ("10.035M", 10035, 3),
        ("1.3E+6", 13, 5),
        ("1.7E18", 17, 17),
        ("7.123456M", 7123456, 0),
        ("6.987654321G", 6987654321, 0),
        ("1.01E", 101, 16),
        # Things that saturate or round (up, to nano).
        ("3.001n", 4, -9),
        ("1.1E-9", 2, -9),
        ("0.0000000001", 1, -9),
        ("0.00000000050", 1, -9),
        ("0.9n", 1, -9),
        ("0.00000012345", 124, -9),
        ("0.00000012354", 124, -9),
        ("12E", 12, 18),
        ("100.035Ki", 10243584, -2),
        ("0.5Mi", 524288, 0),
        ("0.000000000001Ki", 2, -9),
        (".001", 1, -3),
        (".0001k", 100, -3),
        ("1.", 1, 0),
        ("1.G", 1, 9),
    ],
)
def test_parse_vectors(text: str, mantissa: int, exponent: int) -> None:
    expected = Decimal(mantissa).scaleb(exponent)
    assert parse_quantity(text) == expected
    assert parse_quantity("+" + text) == expected
    assert parse_quantity("-" + text) == -expected


def test_binary_values_are_capped_at_int64_max() -> None:
    assert parse_quantity("9Ei") == INT64_MAX
    assert parse_quantity("9223372036854775807Ki") == INT64_MAX


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.1.M",
        "1+1.0M",
        "0.1mi",
        "0.1am",
        "aoeu",
        ".5i",
        "1i",
        "-3.01i",
        "-3.01e-",
        " 1",
        "1 ",
        "1e",
        "1K",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


# TestQuantityString (DecimalSI rows) and TestQuantityParseEmit: value -> canonical, alternate spellings.
@pytest.mark.parametrize(
    ("canonical", "alternates"),
    [
        ("1G", ["1000M", "0.001T", "1000000k", "1000000000"]),
        ("1m", ["1000u"]),
        ("80m", []),
        ("1080m", ["1.08", "1080000000n"]),
        ("300M", []),
        ("1T", []),
        ("1234567M", []),
        ("3k", []),
        ("0", ["00", "0.000"]),
        ("1n", []),
        ("80n", []),
        ("1080n", ["1.08u"]),
        ("1u", []),
        ("80u", []),
        ("1080u", []),
        ("5", ["5000m"]),
        ("500m", ["0.5"]),
        ("1234567m", []),
        ("1025", []),
        ("1024m", [".001Ki"]),
        ("1024u", [".000001Ki"]),
        ("1024n", [".000000001Ki"]),
        ("2n", [".000000000001Ki"]),
    ],
)
def test_canonical_vectors(canonical: str, alternates: list[str]) -> None:
    for text in [canonical, *alternates]:
        assert canonical_quantity(parse_quantity(text)) == canonical
        if canonical != "0":
            assert canonical_quantity(parse_quantity("-" + text)) == "-" + canonical


# TestMilliNewSet / TestNewScaledSet: NewMilliQuantity(value, DecimalSI).String().
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.001"), "1m"),
        (Decimal(1), "1"),
        (Decimal(1234), "1234"),
        (Decimal(1000), "1k"),
        (Decimal(1234000), "1234k"),
        (Decimal("1.5"), "1500m"),
        (Decimal(0), "0"),
    ],
)
def test_format_milli_vectors(value: Decimal, expected: str) -> None:
    assert format_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, "1500m"),
        (42.0, "42"),
        (0.0004, "0"),  # int64(value*1000.0) truncates toward zero
        (-1.2345, "-1234m"),
        (99.99999, "99999m"),
        (2e9, "2G"),
        (3.5e9, "3500M"),
        (float("nan"), "0"),
        (float("inf"), "9223372036854775807m"),
        (-float("inf"), "-9223372036854775807m"),
    ],
)
def test_format_floats_as_prometheus_adapter_does(value: float, expected: str) -> None:
    assert format_quantity(value) == expected


def test_values_past_exa_keep_their_magnitude() -> None:
    assert canonical_quantity(parse_quantity("1000E")) == "1e21"
    assert parse_quantity("1e21") == Decimal("1e21")


milli_values = st.integers(min_value=-INT64_MAX, max_value=INT64_MAX).map(lambda m: Decimal(m).scaleb(-3))
suffixes = st.sampled_from(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "e3", "E-2", "e+1"]
)
quantity_texts = st.builds(
    lambda sign, whole, fraction, suffix: f"{sign}{whole}{fraction}{suffix}",
    st.sampled_from(["", "+", "-"]),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{0,12}", fullmatch=True)),
    suffixes,
)


@given(milli_values)
def test_milli_values_round_trip(value: Decimal) -> None:
    text = format_quantity(value)
    assert parse_quantity(text) == value
    assert format_quantity(parse_quantity(text)) == text


@given(quantity_texts)
def test_parse_format_parse_is_stable(text: str) -> None:
    value = parse_quantity(text)
    canonical = canonical_quantity(value)
    assert parse_quantity(canonical) == value
    assert canonical_quantity(parse_quantity(canonical)) == canonical


@given(quantity_texts)
def test_canonical_form_is_an_integer_with_the_largest_suffix(text: str) -> None:
    canonical = canonical_quantity(parse_quantity(text))
    digits = canonical.lstrip("-").rstrip("numkMGTPE")
    assert digits.isdigit()
    if canonical != "0" and "e" not in canonical:
        # A mantissa that ends in 000 would have taken the next suffix up (except at the top, E).
        assert not digits.endswith("000") or canonical.endswith("E")


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-9e15, max_value=9e15))
def test_format_truncates_floats_to_milli(value: float) -> None:
    expected = int(Decimal(value * 1000.0)) / Decimal(1000)
    assert parse_quantity(format_quantity(value)) == expected


@given(st.integers(min_value=-INT64_MAX, max_value=INT64_MAX))
def test_integer_canonical_form_matches_the_decimal_one(milli: int) -> None:
    assert canonical_milli(milli) == canonical_quantity(Decimal(milli).scaleb(-3))


@given(st.floats(allow_nan=False))
def test_float_fast_path_matches_decimal_truncation(value: float) -> None:
    scaled = value * 1000.0
    beyond = 2**64 if scaled > 0 else -(2**64)
    exact = int(Decimal(scaled).to_integral_value(rounding=ROUND_DOWN)) if math.isfinite(scaled) else beyond
    milli = max(-INT64_MAX, min(INT64_MAX, exact))
    assert format_quantity(value) == canonical_quantity(Decimal(milli).scaleb(-3))
