"""Command-line flags with environment-variable twins (``--listen`` <-> ``KGM_LISTEN``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any

ENV_PREFIX = "KGM_"


def env_name(flag: str) -> str:
    """The environment twin of a long flag: ``--gpu-source`` -> ``KGM_GPU_SOURCE``."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def parse_bool(text: str) -> bool:
    """Parse the boolean spellings users type in flags and manifests."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def positive_float(text: str) -> float:
    """Parse a number greater than 0 (durations, rates, ratios of speed)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


class EnvTwinParser:
    """Adds flags to an ``argparse`` parser, each defaulting to its ``KGM_*`` twin when set."""

    def __init__(self, parser: argparse.ArgumentParser, environ: dict[str, str] | None = None) -> None:
        self.parser = parser
        self._environ = dict(os.environ) if environ is None else environ
        self._env_errors: list[str] = []
        self._repeatable_fallbacks: dict[str, list[Any]] = {}

    def add(
        self,
        flag: str,
        *,
        help: str,
        default: Any = None,
        type: Callable[[str], Any] = str,
        choices: Sequence[str] | None = None,
        repeatable: bool = False,
        metavar: str | None = None,
    ) -> None:
        """Add ``flag``; its env twin (comma-separated when repeatable) replaces the default."""
        env = env_name(flag)
        raw = self._environ.get(env)
        value: Any = default
        if raw is not None and raw != "":
            try:
                if repeatable:
                    value = [type(part.strip()) for part in raw.split(",") if part.strip()]
                else:
                    value = type(raw)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                self._env_errors.append(f"{env}={raw!r}: {exc}")
            if not repeatable and choices is not None and value not in choices:
                self._env_errors.append(f"{env}={raw!r}: choose from {', '.join(choices)}")
        shown_default = ",".join(map(str, default)) if isinstance(default, list) else default
        full_help = (
            f"{help} [env {env}; default {shown_default if shown_default not in (None, '') else 'unset'}]"
        )
        if repeatable:
            # argparse's "append" would add flags to the env/default list; flags must replace it instead.
            self._repeatable_fallbacks[flag.lstrip("-").replace("-", "_")] = list(value or [])
            value = None
        self.parser.add_argument(
            flag,
            help=full_help,
            default=value,
            type=type,
            choices=choices,
            action="append" if repeatable else "store",
            metavar=metavar,
        )

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """Parse ``argv``; a bad environment value is reported like a bad flag."""
        if self._env_errors:
            self.parser.error("; ".join(self._env_errors))
        args = self.parser.parse_args(argv)
        for dest, fallback in self._repeatable_fallbacks.items():
            if getattr(args, dest) is None:
                setattr(args, dest, fallback)
        return args
