"""Builds pod attribution from plain options: what the CLI calls, and the only place that wires it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.guard import Collector
from exporter.collectors.pods import PodsCollector
from exporter.gpu.source import GpuSource
from exporter.pods.allocations import AllocationReader, PodResourcesHolders
from exporter.pods.device_ids import DEFAULT_RESOURCE_PATTERNS
from exporter.pods.kube_pods import KubeApis, KubePodDirectory, connect
from exporter.pods.kubelet_client import DEFAULT_SOCKET, ClientOptions, PodResourcesClient
from exporter.pods.model import ContainerRef, HolderSource, NoHolders, PodDirectory
from exporter.pods.procfs import ProcCgroups
from exporter.pods.simulated import SimulatedAllocations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttributionOptions:
    """Attribution settings as the CLI parsed them; an empty ``socket_path`` switches attribution off.

    ``simulated_pods`` replaces the kubelet with simulated allocations (the demo and the HPA lab).
    """

    socket_path: str = DEFAULT_SOCKET
    resource_patterns: tuple[str, ...] = DEFAULT_RESOURCE_PATTERNS
    proc_root: str = "/proc"
    node_name: str = ""
    kube_api: bool = False
    kubeconfig: str = ""
    pod_labels: tuple[str, ...] = ()
    timeout_seconds: float = 2.0
    list_ttl_seconds: float = 1.0
    simulated_pods: tuple[ContainerRef, ...] = ()


def _nothing() -> None:
    """Nothing to close."""


@dataclass(frozen=True)
class Attribution:
    """What the exporter registers: the holder source for device series and the attribution collectors."""

    holders: HolderSource
    collectors: tuple[tuple[str, Collector], ...] = ()
    close: Callable[[], None] = field(default=_nothing)


def build_attribution(
    options: AttributionOptions,
    source: GpuSource,
    errors: ErrorCounts,
    *,
    connect_kube: Callable[[str], KubeApis] = connect,
    allocations: AllocationReader | None = None,
) -> Attribution:
    """Wire the kubelet client, the allocated and observed views and, if asked, the pod watch.

    ``allocations`` replaces the kubelet (the scenario's simulated pods).

    Nothing here needs the kubelet or the API server to be up: both are reached lazily and their
    absence shows as ``kgm_pod_resources_up`` 0 or missing ``gpu_pod_info``, never as a failure to start.
    """
    reader: AllocationReader
    if allocations is not None:
        reader, close_reader = allocations, _nothing
    elif options.simulated_pods:
        reader = SimulatedAllocations(source, options.simulated_pods)
        close_reader = _nothing
    elif options.socket_path:
        client = PodResourcesClient(
            options.socket_path,
            ClientOptions(timeout_seconds=options.timeout_seconds, list_ttl_seconds=options.list_ttl_seconds),
            errors=errors,
        )
        reader, close_reader = client, client.close
    else:
        return Attribution(NoHolders())
    holders = PodResourcesHolders(reader, options.resource_patterns, errors=errors)
    directory: PodDirectory | None = None
    watcher: KubePodDirectory | None = None
    if options.kube_api:
        try:
            watcher = KubePodDirectory(
                connect_kube(options.kubeconfig),
                options.node_name,
                label_keys=options.pod_labels,
                errors=errors,
            )
        except Exception as error:  # noqa: BLE001 - attribution from pod-resources alone still works
            errors.add("pods")
            log.warning(
                "Kubernetes API enrichment unavailable; attributing from pod-resources alone",
                extra={"error": str(error), "kubeconfig": options.kubeconfig or "in-cluster"},
            )
        else:
            watcher.start()
            directory = watcher
    collector = PodsCollector(
        source,
        holders,
        ProcCgroups(options.proc_root, errors=errors),
        errors=errors,
        directory=directory,
        pod_labels=options.pod_labels,
    )

    def close() -> None:
        if watcher is not None:
            watcher.close()
        close_reader()

    return Attribution(holders, (("pods", collector),), close)
