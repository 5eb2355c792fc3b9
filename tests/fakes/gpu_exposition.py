"""Exposition text with the exporter's GPU series, and a tiny HTTP server that serves it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from tests.fakes.threaded_app import ThreadedApp
from tests.support import free_port

Container = tuple[str, str, str]
DEVICE_LABELS = ["gpu", "uuid", "namespace", "pod", "container"]


@dataclass
class FakeGpu:
    """One device as the exporter would describe it."""

    index: str
    uuid: str
    utilization: float = 0.0
    memory_used: float = 0.0
    memory_total: float = 80e9
    holders: Sequence[Container] = ()
    observed_utilization: dict[Container, float] = field(default_factory=dict)
    observed_memory: dict[Container, float] = field(default_factory=dict)


class _Collector:
    def __init__(self, gpus: Sequence[FakeGpu], node: str) -> None:
        self._gpus = gpus
        self._node = node

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(name, f"{name} help", labels=DEVICE_LABELS)
            for name in ("gpu_utilization_ratio", "gpu_memory_used_bytes", "gpu_memory_total_bytes")
        }
        allocation = InfoMetricFamily(
            "gpu_allocation", "GPU allocations.", labels=[*DEVICE_LABELS, "resource"]
        )
        container_util = GaugeMetricFamily("gpu_container_utilization_ratio", "help", labels=DEVICE_LABELS)
        container_mem = GaugeMetricFamily("gpu_container_memory_used_bytes", "help", labels=DEVICE_LABELS)
        for gpu in self._gpus:
            sole = list(gpu.holders[0]) if len(gpu.holders) == 1 else ["", "", ""]
            labels = [gpu.index, gpu.uuid, *sole]
            families["gpu_utilization_ratio"].add_metric(labels, gpu.utilization)
            families["gpu_memory_used_bytes"].add_metric(labels, gpu.memory_used)
            families["gpu_memory_total_bytes"].add_metric(labels, gpu.memory_total)
            for holder in gpu.holders:
                allocation.add_metric([gpu.index, gpu.uuid, *holder, "nvidia.com/gpu"], {})
            for holder, value in gpu.observed_utilization.items():
                container_util.add_metric([gpu.index, gpu.uuid, *holder], value)
            for holder, value in gpu.observed_memory.items():
                container_mem.add_metric([gpu.index, gpu.uuid, *holder], value)
        yield from families.values()
        yield allocation
        yield container_util
        yield container_mem
        build = InfoMetricFamily(
            "kgm_build", "build", labels=["version", "node"] if self._node else ["version"]
        )
        build.add_metric(["0.1.0", self._node] if self._node else ["0.1.0"], {})
        yield build
        # Families the adapter must skip, with label values that look like the wanted names.
        noise = GaugeMetricFamily("node_load1", "load", labels=["note"])
        noise.add_metric(['gpu_utilization_ratio{gpu="9"} 1\nx'], 3.0)
        yield noise


def exposition(gpus: Sequence[FakeGpu], node: str = "") -> str:
    """The text an exporter with these devices would serve."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(gpus, node))
    return generate_latest(registry).decode()


class ExpositionServer(ThreadedApp):
    """Serves ``text`` at ``/metrics`` on loopback from its own thread.

    ``status`` makes it answer errors and ``delay`` makes it slow.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.status = 200
        self.delay = 0.0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    async def _metrics(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return web.Response(text=self.text, status=self.status, content_type="text/plain")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
