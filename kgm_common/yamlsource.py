"""YAML loading that remembers line numbers, so errors in HPA specs and scenarios can point at the line."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Any

import yaml


class SourceError(ValueError):
    """A document that cannot be used; the message names the file, the line and the field."""


class LineMap(dict[Any, Any]):
    """A YAML mapping that knows its own line and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class LineList(list[Any]):
    """A YAML sequence that knows its own line and the line of each item (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry line numbers; duplicate keys are errors."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    mapping = LineMap(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, dict | list) or not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, f"line {line}: a mapping key must be a plain value", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"line {line}: key {key!r} given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    sequence = LineList(node.start_mark.line + 1)
    for child in node.value:
        sequence.append(loader.construct_object(child, deep=True))
        sequence.item_lines.append(child.start_mark.line + 1)
    return sequence


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_documents(text: str, source: str) -> Iterator[Any]:
    """Every document in ``text``; a YAML syntax error becomes a ``SourceError`` naming the line."""
    try:
        documents = list(yaml.load_all(text, Loader=_LineLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SourceError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise SourceError(f"{source}: invalid YAML: {exc}") from None
    yield from documents


def line_of(container: object, key: object = None) -> int | None:
    """The line of ``key`` in a mapping, item ``key`` of a sequence, or the container itself."""
    if isinstance(container, LineMap):
        return container.key_lines.get(key, container.line) if key is not None else container.line
    if isinstance(container, LineList):
        if isinstance(key, int) and 0 <= key < len(container.item_lines):
            return container.item_lines[key]
        return container.line
    return None


class Node:
    """A value at a path in a loaded document; its helpers fail with the path and line in the message."""

    def __init__(
        self,
        value: Any,
        path: str,
        line: int | None,
        source: str,
        error_type: type[SourceError] = SourceError,
    ) -> None:
        self.value = value
        self.path = path
        self.line = line
        self.source = source
        self.error_type = error_type

    def error(self, message: str) -> SourceError:
        """An error of this document's type naming the source, line and path."""
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        field = f" {self.path}:" if self.path else ""
        return self.error_type(f"{where}:{field} {message}")

    def _child(self, value: Any, key: object, path: str) -> Node:
        line = line_of(self.value, key)
        return Node(value, path, line if line is not None else self.line, self.source, self.error_type)

    def mapping(self) -> dict[Any, Any]:
        """The value as a mapping."""
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_kind(self.value)}")
        return self.value

    def get(self, key: str) -> Node | None:
        """The child at ``key``, or ``None`` when absent or null."""
        mapping = self.mapping()
        if mapping.get(key) is None:
            return None
        return self._child(mapping[key], key, f"{self.path}.{key}" if self.path else key)

    def require(self, key: str) -> Node:
        """The child at ``key``; absent or null is an error."""
        child = self.get(key)
        if child is None:
            raise self.error(f"{key}: required")
        return child

    def only(self, *allowed: str) -> None:
        """Reject keys other than ``allowed``, so a misspelt field is an error rather than ignored."""
        for key in self.mapping():
            if key not in allowed:
                child = self._child(None, key, f"{self.path}.{key}" if self.path else str(key))
                raise child.error(f"unknown field (known: {', '.join(allowed)})")

    def items(self) -> list[Node]:
        """The children of a sequence."""
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_kind(self.value)}")
        return [self._child(item, i, f"{self.path}[{i}]") for i, item in enumerate(self.value)]

    def string(self) -> str:
        """The value as a non-empty string."""
        if not isinstance(self.value, str) or not self.value:
            raise self.error(f"expected a non-empty string, got {_kind(self.value)}")
        return self.value

    def integer(self, minimum: int | None = None, maximum: int | None = None) -> int:
        """The value as an integer within bounds."""
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error(f"expected an integer, got {_kind(self.value)}")
        if minimum is not None and self.value < minimum:
            raise self.error(f"must be greater than or equal to {minimum}, got {self.value}")
        if maximum is not None and self.value > maximum:
            raise self.error(f"must be less than or equal to {maximum}, got {self.value}")
        return self.value

    def number(self, minimum: float | None = None, maximum: float | None = None) -> float:
        """The value as a finite number within bounds."""
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise self.error(f"expected a number, got {_kind(self.value)}")
        try:
            number = float(self.value)
        except OverflowError:
            raise self.error("is too large") from None
        if not math.isfinite(number):
            raise self.error("must be finite")
        if minimum is not None and number < minimum:
            raise self.error(f"must be greater than or equal to {minimum:g}, got {number:g}")
        if maximum is not None and number > maximum:
            raise self.error(f"must be less than or equal to {maximum:g}, got {number:g}")
        return number


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}" if value else "an empty string"
    return f"{type(value).__name__} {value!r}"
