"""Load-profile specs and CSV series: parsing, values, and errors a user can act on."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.gpu.profiles import (
    Constant,
    ProfileError,
    Ramp,
    Series,
    Sine,
    Step,
    parse_profile,
    parse_series_csv,
)

ratios = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)
times = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_each_kind_parses() -> None:
    assert parse_profile("constant:0.6") == Constant(0.6)
    assert parse_profile("step:from=0.2,to=0.8,at=60") == Step(0.2, 0.8, 60.0)
    assert parse_profile("ramp:from=0,to=1,duration=300") == Ramp(0.0, 1.0, 300.0)
    assert parse_profile("sine:min=0.2,max=0.9,period=120,phase=30") == Sine(0.2, 0.9, 120.0, 30.0)


def test_shapes() -> None:
    assert Step(0.2, 0.8, 60).utilization(59.9) == 0.2
    assert Step(0.2, 0.8, 60).utilization(60) == 0.8
    assert Ramp(0, 1, 100).utilization(25) == pytest.approx(0.25)
    assert Ramp(0, 1, 100).utilization(1000) == 1.0
    assert Sine(0.2, 0.8, 100).utilization(25) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("flat:0.5", "unknown load profile 'flat'"),
        ("constant:", "parameters missing"),
        ("constant:1.5", "outside 0..1"),
        ("step:from=0.2,to=0.8", "missing at"),
        ("sine:min=0.9,max=0.1,period=10", "above max"),
        ("ramp:from=0,to=1,duration=0", "greater than 0"),
        ("sine:min=0,max=1,period=10,speed=2", "unknown parameter 'speed'"),
        ("step:from=0,from=1,to=1,at=1", "given twice"),
        ("constant:nan", "not finite"),
        ("csv:/nonexistent/load.csv", "cannot read /nonexistent/load.csv"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile(spec)


def test_csv_series_interpolates_and_holds(tmp_path: Path) -> None:
    path = tmp_path / "load.csv"
    path.write_text("seconds,utilization\n0,0.1\n10,0.5\n20,0.9\n")
    profile = parse_profile(f"csv:{path}")
    assert profile.utilization(-5) == 0.1
    assert profile.utilization(5) == pytest.approx(0.3)
    assert profile.utilization(15) == pytest.approx(0.7)
    assert profile.utilization(100) == 0.9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,load\n0,1\n", "<csv>:1: header"),
        ("seconds,utilization\n0,0.5\n0,0.6\n", "<csv>:3: seconds must increase"),
        ("seconds,utilization\n0,2\n", "<csv>:2: utilization=2 is outside"),
        ("seconds,utilization\n0\n", "<csv>:2: expected"),
        ("seconds,utilization\n", "no data rows"),
    ],
)
def test_csv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_series_csv(text)


@given(st.text())
def test_arbitrary_specs_parse_or_raise_profile_error(spec: str) -> None:
    with contextlib.suppress(ProfileError):
        parse_profile(spec)


@given(st.text())
def test_arbitrary_csv_parses_or_raises_profile_error(text: str) -> None:
    with contextlib.suppress(ProfileError):
        parse_series_csv(text)


@st.composite
def valid_specs(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["constant", "step", "ramp", "sine"]))
    a, b = draw(ratios), draw(ratios)
    if kind == "constant":
        return f"constant:{a!r}"
    if kind == "step":
        return f"step:from={a!r},to={b!r},at={draw(times)!r}"
    if kind == "ramp":
        return f"ramp:to={b!r},from={a!r},duration={draw(positive)!r}"
    low, high = min(a, b), max(a, b)
    return f"sine:min={low!r},max={high!r},period={draw(positive)!r},phase={draw(times)!r}"


@given(valid_specs(), times)
def test_valid_specs_stay_within_ratio_bounds(spec: str, t: float) -> None:
    value = parse_profile(spec).utilization(t)
    assert -1e-9 <= value <= 1.0 + 1e-9


@given(st.lists(st.tuples(times, ratios), min_size=1, max_size=20, unique_by=lambda p: p[0]), times)
def test_series_round_trips_through_csv(points: list[tuple[float, float]], t: float) -> None:
    points.sort()
    text = "seconds,utilization\n" + "".join(f"{s!r},{v!r}\n" for s, v in points)
    series = parse_series_csv(text)
    assert series == Series(tuple(p[0] for p in points), tuple(p[1] for p in points))
    assert min(v for _, v in points) - 1e-9 <= series.utilization(t) <= max(v for _, v in points) + 1e-9
