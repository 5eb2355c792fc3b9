"""A dependency-free progress bar on stderr for long replays."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class Progress:
    """Redraws ``[#####.....] 50% label`` in place; silent when disabled (not a terminal, or asked so)."""

    def __init__(self, total: float, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1e-9)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = -1

    def update(self, done: float, label: str = "") -> None:
        """Show ``done`` out of ``total``; redraws only when the percentage changes."""
        if not self.enabled:
            return
        percent = min(100, int(100 * done / self.total))
        if percent == self._last:
            return
        self._last = percent
        filled = WIDTH * percent // 100
        self.stream.write(f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {percent:3d}% {label}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled and self._last >= 0:
            self.stream.write("\n")
            self.stream.flush()
