"""PromQL escaping and matchers: every value stays one string literal, every requirement keeps its meaning."""

from __future__ import annotations

import ast
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapter.backends.promql import (
    Matcher,
    NoMatchError,
    alternation,
    one_of,
    quote,
    regex_escape,
    render_matchers,
    requirement_matchers,
    selector_matchers,
)
from adapter.selectors import Operator, Requirement, Selector, parse_selector

text = st.text(st.characters(codec="utf-8"))


@given(text)
def test_quote_round_trips_as_one_literal(value: str) -> None:
    quoted = quote(value)
    # Go's strconv.Unquote and Python read \\, \", \uXXXX and \UXXXXXXXX the same way.
    assert ast.literal_eval(quoted) == value
    inner = quoted[1:-1]
    assert set(inner) <= set(string.printable) - set("\n\r\t\x0b\x0c")
    assert '"' not in inner.replace('\\"', "")


@given(text)
def test_regex_escape_leaves_no_metacharacter_unescaped(value: str) -> None:
    escaped = regex_escape(value)
    assert set(escaped) <= set(string.ascii_letters + string.digits + "_\\{}" + string.punctuation)
    i = 0
    while i < len(escaped):
        if escaped[i] == "\\":
            i += escaped.index("}", i) - i + 1 if escaped[i + 1] == "x" else 2
        else:
            assert escaped[i].isalnum() or escaped[i] == "_", escaped
            i += 1


def test_quote_rejects_lone_surrogates() -> None:
    with pytest.raises(ValueError, match="surrogates"):
        quote("a\ud800")


def test_one_of_shapes() -> None:
    assert str(one_of("pod", ["a"])) == 'pod="a"'
    assert str(one_of("pod", ["b", "a.b", "a"])) == 'pod=~"a|a\\\\.b|b"'
    assert str(one_of("pod", ["a"], negate=True)) == 'pod!="a"'
    assert str(one_of("pod", ["a", "b"], negate=True)) == 'pod!~"a|b"'
    with pytest.raises(NoMatchError):
        one_of("pod", [])
    with pytest.raises(NoMatchError):
        one_of("pod", ["\udcff"])


def test_matcher_refuses_a_bad_label_name() -> None:
    with pytest.raises(ValueError, match="label name"):
        Matcher('pod="x"} or vector(1) #', "=", "x")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ""),
        ("gpu=0", 'gpu="0"'),
        ("gpu==0", 'gpu="0"'),
        ("gpu!=0", 'gpu!="0"'),
        ("gpu in (0,1)", 'gpu=~"0|1"'),
        ("gpu notin (0,1)", 'gpu!~"0|1"'),
        ("gpu", 'gpu!=""'),
        ("!gpu", 'gpu=""'),
        ("gpu=0,uuid=GPU-a", 'gpu="0", uuid="GPU-a"'),
        # No series has a label with the empty value: != "" holds for all, = "" for none.
        ("gpu!=", ""),
        ("gpu notin (,0)", 'gpu!="0"'),
        ("gpu in (,0)", 'gpu="0"'),
        # Not label names in Prometheus: no series has them.
        ("app.kubernetes.io/name!=x", ""),
        ("!app.kubernetes.io/name", ""),
    ],
)
def test_selector_matchers(selector: str, expected: str) -> None:
    assert render_matchers(selector_matchers(parse_selector(selector))) == expected


@pytest.mark.parametrize(
    "selector", ["app.kubernetes.io/name=x", "app.kubernetes.io/name", "a.b in (x)", "gpu="]
)
def test_impossible_requirement_matches_nothing(selector: str) -> None:
    with pytest.raises(NoMatchError):
        selector_matchers(parse_selector(selector))


def test_numeric_comparisons_are_refused() -> None:
    with pytest.raises(ValueError, match="compares numbers"):
        requirement_matchers(Requirement("gpu", Operator.GREATER_THAN, ("1",)))


def test_none_selector_adds_nothing() -> None:
    assert selector_matchers(None) == []
    assert selector_matchers(Selector()) == []


@given(st.lists(text, min_size=1, max_size=5))
def test_requirement_values_are_escaped(values: list[str]) -> None:
    requirement = Requirement("pod", Operator.IN, tuple(sorted(set(values))))
    usable = {value for value in values if value}
    if not usable:
        with pytest.raises(NoMatchError):
            requirement_matchers(requirement)
        return
    rendered = render_matchers(requirement_matchers(requirement))
    label, _, literal = rendered.partition("=~" if len(usable) > 1 else "=")
    assert label == "pod"
    ast.literal_eval(literal)


# The escapes spelled out one character at a time, as the module's docstring states them: the fast
# paths (str.translate for the common text) must write exactly this.
LITERAL_PLAIN = set(string.ascii_letters + string.digits + " _-.:/,;=+@#%&*()[]<>!?~^|$'")
REGEX_PLAIN = set(string.ascii_letters + string.digits + "_")


def quoted_char(char: str) -> str:
    if char in LITERAL_PLAIN:
        return char
    if char in '\\"':
        return "\\" + char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def regex_char(char: str) -> str:
    if char in REGEX_PLAIN:
        return char
    return "\\" + char if char in string.punctuation else f"\\x{{{ord(char):x}}}"


names = st.one_of(text, st.from_regex(r"[a-z0-9_][a-z0-9._\\\-\"]{0,40}", fullmatch=True))


@example("_a-b.c")
@example('\\"')
@given(names)
def test_quote_writes_each_character_as_specified(value: str) -> None:
    assert quote(value) == '"' + "".join(map(quoted_char, value)) + '"'


@example("_a-b.c")
@example('\\"')
@given(names)
def test_regex_escape_writes_each_character_as_specified(value: str) -> None:
    assert regex_escape(value) == regex_char_string(value)


@given(st.lists(st.one_of(names, st.text(alphabet="a\x00|-.", max_size=4)), min_size=1, max_size=8))
def test_alternation_escapes_each_value_alone(values: list[str]) -> None:
    assert alternation(values) == "|".join(map(regex_char_string, values))


def regex_char_string(value: str) -> str:
    return "".join(map(regex_char, value))
