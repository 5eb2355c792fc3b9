"""PromQL label matchers built from untrusted names and selectors, escaped so no input alters a query.

Every value goes into a double-quoted PromQL string in which only ASCII letters, digits and
punctuation stand as themselves (``\\`` and ``"`` backslash-escaped); anything else is a
``\\u``/``\\U`` escape, as Go's ``strconv.Unquote`` (which PromQL's lexer uses) reads them. Regex
alternations first escape each value for RE2 (ASCII punctuation with a backslash, anything else as
``\\x{...}``), so a value matches only itself. Label names cannot be escaped: a name that is not a
Prometheus label name is on no series, so a requirement on it is decided as one on an absent label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapter.selectors import Operator, Requirement, Selector

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PLAIN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/,;=+@#%&*()[]<>!?~^|$'"
)
_REGEX_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_RE2_PUNCTUATION = frozenset(r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~""")


class NoMatchError(Exception):
    """The requested objects or selector can match no series; the answer is empty without asking."""


def _valid_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode text (label values are UTF-8; lone surrogates match nothing)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Most values need no escape beyond a backslash before some ASCII punctuation (Kubernetes names,
# and the regex alternations of thousands of them): ``str.replace`` per character to escape does
# that in C, far faster than a Python step per character or ``str.translate`` to longer strings.
_PLAIN_LITERAL = re.compile("[" + re.escape("".join(sorted(_PLAIN))) + '\\\\"]*')
_PLAIN_PATTERN = re.compile("[" + re.escape("".join(sorted(_REGEX_PLAIN | _RE2_PUNCTUATION))) + "]*")
# Between the values of an alternation while they are escaped together: a character no value has.
_SEPARATOR = "\x00"
_SEPARATED_PLAIN_PATTERN = re.compile(
    "[" + re.escape("".join(sorted(_REGEX_PLAIN | _RE2_PUNCTUATION))) + _SEPARATOR + "]*"
)


def _backslashed(text: str, chars: Iterable[str]) -> str:
    """``text`` with a backslash before each of ``chars`` (and before backslashes, first)."""
    text = text.replace("\\", "\\\\")
    for char in chars:
        if char in text:
            text = text.replace(char, "\\" + char)
    return text


_QUOTED_CHARS = ('"',)
_PATTERN_CHARS = tuple(sorted(_RE2_PUNCTUATION - _REGEX_PLAIN - {"\\"}))


def quote(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal; raises ``ValueError`` for non-UTF-8 text."""
    if not _valid_text(value):
        raise ValueError("label values are UTF-8 text; this one has lone surrogates")
    if _PLAIN_LITERAL.fullmatch(value):
        return '"' + _backslashed(value, _QUOTED_CHARS) + '"'
    out = []
    for char in value:
        if char in _PLAIN:
            out.append(char)
        elif char in '\\"':
            out.append("\\" + char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def regex_escape(value: str) -> str:
    """An RE2 pattern matching exactly ``value``."""
    if _PLAIN_PATTERN.fullmatch(value):
        return _backslashed(value, _PATTERN_CHARS)
    out = []
    for char in value:
        if char in _REGEX_PLAIN:
            out.append(char)
        elif char in _RE2_PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(f"\\x{{{ord(char):x}}}")
    return "".join(out)


@dataclass(frozen=True)
class Matcher:
    """One PromQL label matcher; ``str()`` renders it with the value escaped."""

    label: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.label):
            raise ValueError(f"{self.label!r} is not a Prometheus label name")
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {self.op!r}")

    def __str__(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"


def one_of(label: str, values: Iterable[str], *, negate: bool = False) -> Matcher:
    """``label`` equal to one of ``values`` (or to none of them); raises ``NoMatchError`` for no values."""
    usable = sorted({v for v in values if _valid_text(v)})
    if not usable:
        raise NoMatchError(f"no value of {label} can match")
    if len(usable) == 1:
        return Matcher(label, "!=" if negate else "=", usable[0])
    return Matcher(label, "!~" if negate else "=~", alternation(usable))


def alternation(values: Sequence[str]) -> str:
    """An RE2 pattern matching exactly one of ``values``: ``regex_escape`` of each, joined by ``|``."""
    joined = _SEPARATOR.join(values)
    if joined.count(_SEPARATOR) == len(values) - 1 and _SEPARATED_PLAIN_PATTERN.fullmatch(joined):
        return _backslashed(joined, _PATTERN_CHARS).replace(_SEPARATOR, "|")
    return "|".join(map(regex_escape, values))


def requirement_matchers(requirement: Requirement) -> list[Matcher]:
    """Matchers for one selector requirement, meaning what the requirement means on a series' labels.

    A Prometheus series never has a label with the empty value (an empty label is an absent one),
    so ``key=""`` matches nothing and ``key!=""`` everything, as on a Kubernetes object without
    that label. ``gt``/``lt`` compare integers, which label matchers cannot: ``ValueError``.
    """
    key, op = requirement.key, requirement.operator
    if not LABEL_NAME.fullmatch(key):
        if requirement.matches({}):
            return []
        raise NoMatchError(f"{key!r} is not a Prometheus label name, so no series has it")
    values = [value for value in requirement.values if value and _valid_text(value)]
    if op is Operator.EXISTS:
        return [Matcher(key, "!=", "")]
    if op is Operator.DOES_NOT_EXIST:
        return [Matcher(key, "=", "")]
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
        return [one_of(key, values)]
    if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
        return [one_of(key, values, negate=True)] if values else []
    raise ValueError(f"the {op.value} operator compares numbers, which PromQL label matchers cannot")


def selector_matchers(selector: Selector | None) -> list[Matcher]:
    """Matchers for every requirement of ``selector``."""
    if selector is None:
        return []
    return [m for requirement in selector.requirements for m in requirement_matchers(requirement)]


def render_matchers(matchers: Sequence[Matcher]) -> str:
    """Matchers joined for insertion into a selector's braces."""
    return ", ".join(str(m) for m in matchers)
