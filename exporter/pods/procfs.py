"""Reads a process's cgroup membership under the host's ``/proc`` (``--proc-root``).

PIDs come from NVML and are host PIDs, so the exporter needs the host's PID namespace
(``hostPID: true``); a process that exits between NVML's answer and the read is normal.
"""

from __future__ import annotations

import logging
from pathlib import Path

from exporter.collectors.errors import ErrorCounts
from exporter.pods.cgroups import ContainerCgroup, parse_proc_cgroup

log = logging.getLogger(__name__)


class ProcCgroups:
    """``pid -> ContainerCgroup`` from ``<proc_root>/<pid>/cgroup``."""

    def __init__(self, proc_root: str = "/proc", *, errors: ErrorCounts | None = None) -> None:
        self._root = Path(proc_root)
        self._errors = errors
        self._warned = False

    def container_of(self, pid: int) -> ContainerCgroup | None:
        """The pod and container of ``pid``, or None outside any pod or when it has gone."""
        try:
            text = (self._root / str(pid) / "cgroup").read_text(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            return None
        except OSError as error:
            if self._errors is not None:
                self._errors.add("pods")
            if not self._warned:
                log.warning(
                    "cannot read process cgroups; per-container GPU usage is incomplete",
                    extra={"pid": pid, "proc_root": str(self._root), "error": str(error)},
                )
                self._warned = True
            return None
        return parse_proc_cgroup(text)
