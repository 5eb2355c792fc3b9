"""Label selector grammar: upstream's test vectors, a reference evaluator, canonical round trips."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.selectors import (
    EVERYTHING,
    Operator,
    Requirement,
    SelectorError,
    parse_selector,
)

# From k8s.io/apimachinery/pkg/labels/selector_test.go (TestSelectorParse, TestSetSelectorParser).
GOOD = [
    "x=a,y=b,z=c",
    "",
    "x!=a,y=b",
    "x=",
    "x= ",
    "x=,z= ",
    "x= ,z= ",
    "!x",
    "x>1",
    "x>1,z<5",
]
BAD = [
    "x=a||y=b",
    "x==a==b",
    "!x=a",
    "x<a",
    "x,,y",
    ",x,y",
    "x nott in (y)",
    "a in (xyz),",
    "a in (xyz)b notin ()",
    "a in (xyz abc)",
    "a notin(",
    "a (",
    "(",
]


@pytest.mark.parametrize("text", GOOD)
def test_upstream_good_strings_restring_without_spaces(text: str) -> None:
    assert str(parse_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text", BAD)
def test_upstream_bad_strings_are_errors_with_a_position(text: str) -> None:
    with pytest.raises(SelectorError, match="position"):
        parse_selector(text)


def test_parse_is_deterministic_in_requirement_order() -> None:
    assert parse_selector("x=a,a=x") == parse_selector("a=x,x=a")
    assert str(parse_selector("x=a,a=x")) == "a=x,x=a"


# Upstream's list parser consumes a second comma after an empty entry, so these differ.
QUIRKS = [("x in (,,,)", ("",)), ("x in (a,,b)", ("", "a", "b")), ("x in (,,)", None), ("x in (a,,)", None)]


@pytest.mark.parametrize(("text", "values"), QUIRKS)
def test_empty_entries_in_value_lists_follow_upstream(text: str, values: tuple[str, ...] | None) -> None:
    if values is None:
        with pytest.raises(SelectorError, match="expected: ',', or identifier"):
            parse_selector(text)
    else:
        assert parse_selector(text).requirements[0].values == values


R = Requirement
SET_PARSER = [
    ("\rx", [R("x", Operator.EXISTS)]),
    (
        "this-is-a-dns.domain.com/key-with-dash",
        [R("this-is-a-dns.domain.com/key-with-dash", Operator.EXISTS)],
    ),
    (
        "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        [R("this-is-another-dns.domain.com/key-with-dash", Operator.IN, ("so", "what"))],
    ),
    (
        "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
        [R("0.1.2.domain/99", Operator.NOT_IN, ("10.10.100.1", "tick.tack.clock"))],
    ),
    ("foo  in\t (abc)", [R("foo", Operator.IN, ("abc",))]),
    ("x notin\n (abc)", [R("x", Operator.NOT_IN, ("abc",))]),
    ("x  notin\t\t\t(abc,def)", [R("x", Operator.NOT_IN, ("abc", "def"))]),
    ("x in (abc,def)", [R("x", Operator.IN, ("abc", "def"))]),
    ("x in (abc,)", [R("x", Operator.IN, ("", "abc"))]),
    ("x in ()", [R("x", Operator.IN, ("",))]),
    (
        "x notin (abc,,def),bar,z in (),w",
        [
            R("bar", Operator.EXISTS),
            R("w", Operator.EXISTS),
            R("x", Operator.NOT_IN, ("", "abc", "def")),
            R("z", Operator.IN, ("",)),
        ],
    ),
    ("x,y in (a)", [R("x", Operator.EXISTS), R("y", Operator.IN, ("a",))]),
    ("x=a", [R("x", Operator.EQUALS, ("a",))]),
    ("x>1", [R("x", Operator.GREATER_THAN, ("1",))]),
    ("x<7", [R("x", Operator.LESS_THAN, ("7",))]),
    ("x=a,y!=b", [R("x", Operator.EQUALS, ("a",)), R("y", Operator.NOT_EQUALS, ("b",))]),
    ("x notin ( )", [R("x", Operator.NOT_IN, ("",))]),
    ("x notin (, a)", [R("x", Operator.NOT_IN, ("", "a"))]),
    ("a ", [R("a", Operator.EXISTS)]),
    ("a in (x,y,notin, z,in)", [R("a", Operator.IN, ("in", "notin", "x", "y", "z"))]),
    ("x,y", [R("x", Operator.EXISTS), R("y", Operator.EXISTS)]),
    ("notin=in", [R("notin", Operator.EQUALS, ("in",))]),
    ("in in (in)", [R("in", Operator.IN, ("in",))]),
    ("x==a", [R("x", Operator.DOUBLE_EQUALS, ("a",))]),
    ("! x", [R("x", Operator.DOES_NOT_EXIST)]),
]


@pytest.mark.parametrize(("text", "requirements"), SET_PARSER)
def test_upstream_set_selector_parser(text: str, requirements: list[Requirement]) -> None:
    assert parse_selector(text).requirements == tuple(requirements)


MATCHES = [
    ("", {"x": "y"}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True),
    ("!x", {"y": "z"}, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x=z", {}, False),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False),
    ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
    ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
    ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
    ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
    ("x notin (),y", {"y": ""}, True),
    ("!x,y", {"y": ""}, True),
    ("x notin (),!y", {"y": ""}, False),
    ("x in ()", {"y": "baz"}, False),
    ("z>1", {"z": "2"}, True),
    ("z>1", {"z": "v2"}, False),
    ("z<5", {"z": " 4"}, False),
    ("z<5", {"z": "4_0"}, False),
    ("z>5", {"z": "99999999999999999999"}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_upstream_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a" * 254, "name part must be no more than 63"),
        ("a" * 64, "name part must be no more than 63"),
        ("Example.com/x", "prefix part"),
        ("/x", "prefix part must be non-empty"),
        ("a/b/c", "at most one '/'"),
        ("x=" + "v" * 64, "no more than 63"),
        ("x=-a", "start and end with an alphanumeric"),
        ("x in (a,b_)", "start and end with an alphanumeric"),
        ("x>-1", "start and end"),
        ("x>" + "9" * 20, "must be an integer"),
        ("x=a b", "found 'b' at position 4"),
        ("x y", "found 'y' at position 2"),
        ("x=(", "found '(' at position 2, expected: identifier"),
    ],
)
def test_validation_messages(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert fragment in str(info.value)


def test_error_messages_stay_short_for_huge_input() -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector("x=" + "a" * 100_000 + ",y")
    assert len(str(info.value)) < 400


def test_longest_valid_keys_and_values_pass() -> None:
    key = "a" * 253 + "/" + "b" * 63
    selector = parse_selector(f"{key}={'v' * 63}")
    assert selector.matches({key: "v" * 63})


def test_empty_selector_is_everything() -> None:
    assert parse_selector("  \t") == EVERYTHING
    assert EVERYTHING.empty
    assert EVERYTHING.matches({})
    assert EVERYTHING.matches({"a": "b"})


# Property tests.

KEYS = ["a", "b", "app", "example.com/tier", "in", "notin", "x.y-z_1"]
VALUES = ["", "v", "w", "in", "notin", "1", "10", "007", "a.b-c_d"]
NUMBERS = ["0", "1", "7", "10", "0010"]
LABEL_VALUES = [*VALUES, "-1", "+3", "x1", "\u0663", " 1"]


@st.composite
def requirement_specs(draw: st.DrawFn) -> tuple[str, str, tuple[str, ...]]:
    key = draw(st.sampled_from(KEYS))
    op = draw(st.sampled_from(["exists", "!", "=", "==", "!=", "in", "notin", ">", "<"]))
    if op in ("exists", "!"):
        return key, op, ()
    if op in (">", "<"):
        return key, op, (draw(st.sampled_from(NUMBERS)),)
    if op in ("in", "notin"):
        # Unique values: upstream rejects some runs of empty entries, such as "(,,)" (see QUIRKS).
        return key, op, tuple(draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=4, unique=True)))
    return key, op, (draw(st.sampled_from(VALUES)),)


def reference_match(specs: list[tuple[str, str, tuple[str, ...]]], labels: dict[str, str]) -> bool:
    """The selector semantics written out plainly, independently of the parser's data structures."""
    for key, op, values in specs:
        have = labels.get(key)
        if op == "exists":
            ok = have is not None
        elif op == "!":
            ok = have is None
        elif op in ("=", "==", "in"):
            ok = have is not None and have in values
        elif op in ("!=", "notin"):
            ok = have is None or have not in values
        else:
            # strconv.ParseInt: an optional sign, then ASCII digits.
            ok = (
                have is not None
                and re.fullmatch(r"[+-]?[0-9]+", have) is not None
                and (int(have) > int(values[0]) if op == ">" else int(have) < int(values[0]))
            )
        if not ok:
            return False
    return True


def render(specs: list[tuple[str, str, tuple[str, ...]]], spaces: list[str]) -> str:
    """Selector text for ``specs`` with the given whitespace sprinkled where the grammar allows it."""
    pad = itertools.cycle(spaces)
    parts = []
    for key, op, values in specs:
        if op == "exists":
            text = f"{next(pad)}{key}{next(pad)}"
        elif op == "!":
            text = f"{next(pad)}!{next(pad)}{key}{next(pad)}"
        elif op in ("in", "notin"):
            inner = ",".join(f"{next(pad)}{value}{next(pad)}" for value in values)
            text = f"{next(pad)}{key} {op}{next(pad)}({inner}){next(pad)}"
        else:
            text = f"{next(pad)}{key}{next(pad)}{op}{next(pad)}{values[0]}{next(pad)}"
        parts.append(text)
    return ",".join(parts)


specs_lists = st.lists(requirement_specs(), max_size=5)
whitespace = st.lists(st.sampled_from(["", "", " ", "\t", "\n", "\r", "  "]), min_size=1, max_size=6)
label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(LABEL_VALUES), max_size=5)


@settings(max_examples=400)
@given(specs=specs_lists, spaces=whitespace, labels=label_sets)
def test_matches_like_the_reference_evaluator(
    specs: list[tuple[str, str, tuple[str, ...]]], spaces: list[str], labels: dict[str, str]
) -> None:
    selector = parse_selector(render(specs, spaces))
    assert selector.matches(labels) is reference_match(specs, labels)


@settings(max_examples=300)
@given(specs=specs_lists, spaces=whitespace)
def test_canonical_string_round_trips(
    specs: list[tuple[str, str, tuple[str, ...]]], spaces: list[str]
) -> None:
    selector = parse_selector(render(specs, spaces))
    again = parse_selector(str(selector))
    assert again == selector
    assert str(again) == str(selector)
    assert [r.key for r in selector.requirements] == sorted(r.key for r in selector.requirements)


ALPHABET = st.sampled_from([*list("ab=!(),<> \t\n/.-_0123456789xé\x00"), "in", "notin", "==", "!="])


@settings(max_examples=1000)
@given(text=st.one_of(st.text(), st.lists(ALPHABET, max_size=20).map("".join)))
def test_arbitrary_text_parses_or_raises_selector_error(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as exc:
        message = str(exc)
    else:
        assert parse_selector(str(selector)) == selector
        return
    assert "position" in message
