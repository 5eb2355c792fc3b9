"""Kubernetes label selectors (placeholder signature; the full grammar lands with the adapter)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class SelectorError(ValueError):
    """A selector that does not parse; the API answers 400 with this message."""


class Selector(Protocol):
    """A parsed label selector."""

    def matches(self, labels: Mapping[str, str]) -> bool: ...
