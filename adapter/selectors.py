"""Kubernetes label selectors: the grammar and matching rules of k8s.io/apimachinery ``labels.Parse``.

Syntax (``selector := requirement ("," requirement)*``, whitespace ``' ' \\t \\r \\n`` between tokens)::

    key              key exists            !key               key does not exist
    key=v  key==v    key has value v       key!=v             key absent or not v
    key in (a,b)     key has a or b        key notin (a,b)    key absent or neither a nor b
    key>1  key<1     key's value is an integer greater / less than the given one

Keys are qualified names (``[DNS-subdomain/]name``, name at most 63 characters); values are empty or at
most 63 characters of ``[A-Za-z0-9_.-]`` starting and ending alphanumeric. The empty selector matches
everything. As upstream, values of a set are deduplicated and sorted and requirements are sorted by key,
so ``str(selector)`` is canonical and parses back to an equal selector.

One deliberate difference: upstream's lexer reads bytes and takes a NUL byte for the end of the text,
so it ignores whatever follows one; here NUL is an ordinary character, which no key or value admits.
Error positions count characters from 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

MAX_VALUE_LENGTH = 63
MAX_NAME_LENGTH = 63
MAX_PREFIX_LENGTH = 253

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# strconv.ParseInt(s, 10, 64): an optional sign and ASCII digits only (Python's int() also takes spaces,
# underscores and non-ASCII digits, which upstream rejects).
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")


class SelectorError(ValueError):
    """A selector that does not parse; the API answers 400 with this message."""


class Operator(StrEnum):
    """Requirement operators, spelled as ``k8s.io/apimachinery/pkg/selection`` spells them."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_SET_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
_NUMERIC_OPERATORS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_NEGATIVE_OPERATORS = frozenset({Operator.NOT_IN, Operator.NOT_EQUALS})


def _parse_int64(text: str) -> int | None:
    if not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _compare(op: Operator, have_text: str, want_text: str) -> bool:
    have, want = _parse_int64(have_text), _parse_int64(want_text)
    if have is None or want is None:
        return False
    return have > want if op is Operator.GREATER_THAN else have < want


@dataclass(frozen=True, order=True)
class Requirement:
    """One condition on one label; ``values`` is sorted and free of duplicates."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (absent keys satisfy only ``!=``, ``notin``, ``!``)."""
        op = self.operator
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            return (self.key in labels) == (op is Operator.EXISTS)
        if self.key not in labels:
            return op in _NEGATIVE_OPERATORS
        value = labels[self.key]
        if op in _NUMERIC_OPERATORS:
            return _compare(op, value, self.values[0])
        return (value in self.values) != (op in _NEGATIVE_OPERATORS)

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in _SET_OPERATORS:
            return f"{self.key} {op.value} ({','.join(self.values)})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector: the AND of its requirements, sorted by key."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the selector restricts nothing."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


EVERYTHING = Selector()


def validate_key(key: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), or ``None`` when it is one."""
    parts = key.split("/")
    if len(parts) > 2:
        return "a qualified name has at most one '/' (after an optional DNS subdomain prefix)"
    problems: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        elif len(prefix) > MAX_PREFIX_LENGTH:
            problems.append(f"prefix part must be no more than {MAX_PREFIX_LENGTH} characters")
        elif not _DNS_SUBDOMAIN.fullmatch(prefix):
            problems.append(
                "prefix part must be a lowercase RFC 1123 subdomain "
                "(lowercase alphanumerics, '-' and '.', starting and ending alphanumeric)"
            )
    name = parts[-1]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"name part must be no more than {MAX_NAME_LENGTH} characters")
    if name and not _NAME.fullmatch(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return "; ".join(problems) or None


def validate_value(value: str) -> str | None:
    """Why ``value`` is not a label value, or ``None`` when it is one (the empty value is one)."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"must be no more than {MAX_VALUE_LENGTH} characters"
    if value and not _NAME.fullmatch(value):
        return (
            "a label value must be empty or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def _quote(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error message, cut short: the message goes back to the client."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class _Token(Enum):
    END = "end of string"
    IDENTIFIER = "identifier"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    BANG = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER = ">"
    LESS = "<"
    IN = "in"
    NOT_IN = "notin"


_SYMBOLS = {
    t.value: t
    for t in (
        _Token.OPEN,
        _Token.CLOSE,
        _Token.COMMA,
        _Token.BANG,
        _Token.EQUALS,
        _Token.DOUBLE_EQUALS,
        _Token.NOT_EQUALS,
        _Token.GREATER,
        _Token.LESS,
    )
}
_KEYWORDS = {"in": _Token.IN, "notin": _Token.NOT_IN}
_BINARY = {
    _Token.IN: Operator.IN,
    _Token.NOT_IN: Operator.NOT_IN,
    _Token.EQUALS: Operator.EQUALS,
    _Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Token.NOT_EQUALS: Operator.NOT_EQUALS,
    _Token.GREATER: Operator.GREATER_THAN,
    _Token.LESS: Operator.LESS_THAN,
}
_BINARY_NAMES = "in, notin, =, ==, !=, gt, lt"


@dataclass(frozen=True)
class _Item:
    token: _Token
    text: str
    position: int


def _lex(text: str) -> list[_Item]:
    """Tokens as upstream's lexer cuts them: ``==`` and ``!=`` are the only two-character symbols."""
    items: list[_Item] = []
    pos, length = 0, len(text)
    while True:
        while pos < length and text[pos] in _WHITESPACE:
            pos += 1
        if pos == length:
            items.append(_Item(_Token.END, "", pos))
            return items
        start = pos
        if text[pos] in _SPECIAL:
            pos += 2 if text[pos : pos + 2] in ("==", "!=") else 1
            items.append(_Item(_SYMBOLS[text[start:pos]], text[start:pos], start))
            continue
        while pos < length and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append(_Item(_KEYWORDS.get(word, _Token.IDENTIFIER), word, start))


class _Parser:
    """Upstream's recursive descent; ``in``/``notin`` read as identifiers wherever a value may stand."""

    def __init__(self, text: str) -> None:
        self._items = _lex(text)
        self._index = 0

    def _peek(self, values: bool = True) -> _Item:
        return self._as_value(self._items[self._index]) if values else self._items[self._index]

    def _next(self, values: bool = True) -> _Item:
        item = self._peek(values)
        self._index += 1
        return item

    @staticmethod
    def _as_value(item: _Item) -> _Item:
        if item.token in (_Token.IN, _Token.NOT_IN):
            return _Item(_Token.IDENTIFIER, item.text, item.position)
        return item

    @staticmethod
    def _fail(item: _Item, expected: str) -> SelectorError:
        found = item.text if item.token is not _Token.END else "end of string"
        return SelectorError(f"found {_quote(found)} at position {item.position}, expected: {expected}")

    def parse(self) -> Selector:
        requirements: list[Requirement] = []
        if self._peek().token is _Token.END:
            return EVERYTHING
        while True:
            item = self._peek()
            if item.token not in (_Token.IDENTIFIER, _Token.BANG):
                raise self._fail(item, "!, identifier, or 'end of string'")
            requirements.append(self._requirement())
            after = self._next()
            if after.token is _Token.END:
                break
            if after.token is not _Token.COMMA:
                raise self._fail(after, "',' or 'end of string'")
            following = self._peek()
            if following.token not in (_Token.IDENTIFIER, _Token.BANG):
                raise self._fail(following, "identifier after ','")
        return Selector(tuple(sorted(requirements, key=lambda r: r.key)))

    def _requirement(self) -> Requirement:
        negated = False
        item = self._next()
        if item.token is _Token.BANG:
            negated = True
            item = self._next()
        if item.token is not _Token.IDENTIFIER:
            raise self._fail(item, "identifier")
        key = item.text
        problem = validate_key(key)
        if problem:
            raise SelectorError(f"invalid label key {_quote(key)} at position {item.position}: {problem}")
        if negated:
            return Requirement(key, Operator.DOES_NOT_EXIST)
        if self._peek().token in (_Token.END, _Token.COMMA):
            return Requirement(key, Operator.EXISTS)
        op_item = self._next(values=False)
        operator = _BINARY.get(op_item.token)
        if operator is None:
            raise self._fail(op_item, _BINARY_NAMES)
        values = self._set_values() if operator in _SET_OPERATORS else self._exact_value()
        for value, position in values:
            problem = validate_value(value)
            if problem:
                raise SelectorError(
                    f"invalid value {_quote(value)} for key {_quote(key)} at position {position}: {problem}"
                )
            if operator in _NUMERIC_OPERATORS and _parse_int64(value) is None:
                raise SelectorError(
                    f"invalid value {_quote(value)} for key {_quote(key)} at position {position}: "
                    "for 'gt', 'lt' operators, the value must be an integer"
                )
        return Requirement(key, operator, tuple(sorted({value for value, _ in values})))

    def _exact_value(self) -> list[tuple[str, int]]:
        item = self._peek()
        if item.token in (_Token.END, _Token.COMMA):
            return [("", item.position)]
        item = self._next()
        if item.token is not _Token.IDENTIFIER:
            raise self._fail(item, "identifier")
        return [(item.text, item.position)]

    def _set_values(self) -> list[tuple[str, int]]:
        opening = self._next()
        if opening.token is not _Token.OPEN:
            raise self._fail(opening, "'('")
        first = self._peek()
        if first.token is _Token.CLOSE:
            self._next()
            return [("", first.position)]
        if first.token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise self._fail(first, "',', ')' or identifier")
        values = self._identifiers()
        closing = self._next()
        if closing.token is not _Token.CLOSE:
            raise self._fail(closing, "')'")
        return values

    def _identifiers(self) -> list[tuple[str, int]]:
        """A comma-separated list in which empty entries stand for the empty value."""
        values: list[tuple[str, int]] = []
        while True:
            item = self._next()
            if item.token is _Token.IDENTIFIER:
                values.append((item.text, item.position))
                following = self._peek()
                if following.token is _Token.COMMA:
                    continue
                if following.token is _Token.CLOSE:
                    return values
                raise self._fail(following, "',' or ')'")
            if item.token is _Token.COMMA:
                if not values:
                    values.append(("", item.position))
                following = self._peek()
                if following.token is _Token.CLOSE:
                    values.append(("", following.position))
                    return values
                if following.token is _Token.COMMA:
                    self._next()
                    values.append(("", following.position))
                continue
            raise self._fail(item, "',', or identifier")


def parse_selector(text: str) -> Selector:
    """Parse a label selector as kube-apiserver does; raises ``SelectorError`` naming the position."""
    try:
        return _Parser(text).parse()
    except SelectorError as exc:
        raise SelectorError(f"unable to parse label selector {_quote(text)}: {exc}") from None
