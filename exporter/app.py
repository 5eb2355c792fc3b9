"""Assembles the exporter: GPU source, collectors, registry, HTTP server; runs until SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest

from exporter.collectors.dcgm_compat import DcgmCompatView
from exporter.collectors.guard import Collector
from exporter.collectors.host import HostCollector
from exporter.config import ExporterConfig
from exporter.gpu.factory import open_gpu_source
from exporter.gpu.scenario import ScenarioGpuSource
from exporter.gpu.source import GpuSource
from exporter.pods.setup import Attribution, AttributionOptions, build_attribution
from exporter.pods.simulated import ScenarioAllocations
from exporter.registry import Telemetry, build_registry
from exporter.server import Readiness, build_app, serve

log = logging.getLogger(__name__)


@dataclass
class Exporter:
    """A built exporter: its registry and the parts that need closing."""

    config: ExporterConfig
    source: GpuSource
    attribution: Attribution
    registry: CollectorRegistry
    readiness: Readiness = field(default_factory=Readiness)

    def close(self) -> None:
        self.attribution.close()
        self.source.close()


def build_exporter(config: ExporterConfig) -> Exporter:
    """Open the sources the config names and wire their collectors into one registry."""
    source = open_gpu_source(config)
    allocations = (
        ScenarioAllocations(source, config.scenario_deployment.namespace)
        if isinstance(source, ScenarioGpuSource)
        else None
    )
    telemetry = Telemetry()
    extra: list[tuple[str, Collector]] = []
    if config.host_metrics:
        host = HostCollector(
            errors=telemetry.collector_errors,
            proc_root=config.proc_root,
            rootfs=config.rootfs,
            mount_timeout_seconds=config.mount_timeout_seconds,
        )
        extra.append(("host", host))
    attribution = build_attribution(
        AttributionOptions(
            socket_path=config.pod_resources_socket,
            resource_patterns=config.gpu_resource_names,
            proc_root=config.proc_root,
            node_name=config.node_name,
            kube_api=config.kube_api,
            kubeconfig=config.kubeconfig,
            pod_labels=config.pod_labels,
            timeout_seconds=config.pod_resources_timeout_seconds,
            list_ttl_seconds=config.pod_resources_cache_ttl_seconds,
            simulated_pods=config.simulated_pods,
        ),
        source,
        telemetry.collector_errors,
        allocations=allocations,
    )
    views = (DcgmCompatView(hostname=config.node_name),) if config.compat == "dcgm" else ()
    registry = build_registry(
        source=source,
        holders=attribution.holders,
        extra=[*extra, *attribution.collectors],
        telemetry=telemetry,
        node=config.node_name,
        views=views,
    )
    return Exporter(config=config, source=source, attribution=attribution, registry=registry)


def run(exporter: Exporter) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, finish in-flight scrapes and close sources."""
    server: WSGIServer = serve(exporter.config.listen, build_app(exporter.registry, exporter.readiness))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    log.info(
        "serving",
        extra={
            "listen": str(exporter.config.listen),
            "gpu_source": exporter.source.name,
            "gpus": len(exporter.source.devices()),
            "host_metrics": exporter.config.host_metrics,
            "pod_attribution": "simulated"
            if exporter.config.simulated_pods or exporter.config.scenario is not None
            else exporter.config.pod_resources_socket,
        },
    )
    generate_latest(exporter.registry)
    exporter.readiness.mark_ready()
    stop.wait()
    server.shutdown()
    server.server_close()
    exporter.close()
    log.info("stopped")
