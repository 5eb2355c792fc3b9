"""``kube-gpu-exporter``: parse options, build the exporter, serve."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from exporter.app import build_exporter, run
from exporter.config import parse_config
from exporter.gpu.factory import GpuSourceError
from kgm_common.logs import configure_logging

log = logging.getLogger("exporter")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    config = parse_config(argv)
    configure_logging(config.log_level, config.log_format)
    try:
        exporter = build_exporter(config)
    except GpuSourceError as exc:
        log.error("cannot start: %s", exc)
        return 2
    try:
        run(exporter)
    except OSError as exc:
        log.error("cannot serve on %s: %s", config.listen, exc.strerror or exc)
        exporter.close()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
