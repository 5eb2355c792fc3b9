"""The real ``kube-gpu-adapter`` command line with the prometheus backend, for end-to-end tests:
``python -m tests.fakes.prometheus_adapter --prometheus-url URL [kube-gpu-adapter flags]``.

Objects come from what Prometheus has (``StaticResolver``), as without a cluster; discovery runs
every second so a test sees new series quickly. ``KGM_TEST_PROMETHEUS_TIMEOUT`` sets the query timeout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from adapter.backends.prometheus import PrometheusBackend
from adapter.backends.prometheus_api import PrometheusClient, PrometheusOptions
from adapter.cli import main as adapter_main
from adapter.config import AdapterConfig
from adapter.objects.static import StaticResolver
from adapter.rules import load_rules


def _components(config: AdapterConfig, api_client: object) -> tuple[PrometheusBackend, StaticResolver]:
    timeout = float(os.environ.get("KGM_TEST_PROMETHEUS_TIMEOUT", "3"))
    client = PrometheusClient(PrometheusOptions(config.prometheus_url, timeout_seconds=timeout))
    backend = PrometheusBackend(
        load_rules(config.config_file), client, discovery_interval=1.0, track_objects=True
    )
    return backend, StaticResolver(backend)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kube-gpu-adapter`` with the prometheus backend in place of the built-in wiring."""
    return adapter_main(argv, components=_components)


if __name__ == "__main__":
    sys.exit(main())
