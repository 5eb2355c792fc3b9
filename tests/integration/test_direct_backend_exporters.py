"""The direct backend against several exporters on loopback, as if on several nodes, some of them dying."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from adapter.backends.base import BackendUnavailable, ObjectKey
from adapter.backends.direct import DirectBackend
from adapter.backends.discovery import StaticTargets
from tests.fakes.gpu_exposition import ExpositionServer, FakeGpu, exposition
from tests.integration.conftest import RunningExporter

pytestmark = pytest.mark.slow

GIB = 2**30
INTERVAL = 0.3
WINDOW = 3
EXPORTER_FLAGS = ("--gpu-source", "simulated", "--simulated-gpus", "2", "--host-metrics", "false")


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.1)


async def test_real_exporters_one_dies_then_all(start_exporter: Callable[..., RunningExporter]) -> None:
    exporters = [start_exporter(*EXPORTER_FLAGS, "--node-name", f"gpu-node-{i}") for i in range(3)]
    backend = DirectBackend(
        StaticTargets([e.url for e in exporters]),
        scrape_interval=INTERVAL,
        window_seconds=WINDOW,
        scrape_timeout=1,
    )
    nodes = [ObjectKey("", f"gpu-node-{i}") for i in range(3)]
    await backend.start()
    try:

        async def all_nodes_served() -> bool:
            if not backend.ready:
                return False
            return len(await backend.values("gpu_memory_used_bytes", "nodes", nodes)) == 3

        await eventually(all_nodes_served, "every node has values")
        utilization = await backend.values("gpu_utilization", "nodes", nodes)
        memory = await backend.values("gpu_memory_utilization", "nodes", nodes)
        used = await backend.values("gpu_memory_used_bytes", "nodes", nodes)
        for key in nodes:
            assert 0.0 <= utilization[key].value <= 100.0
            assert 0.0 < memory[key].value < 100.0
            assert used[key].value > 0
            assert used[key].value == int(used[key].value)
            assert utilization[key].window_seconds == WINDOW
        assert backend.stats().up == 3

        exporters[1].process.kill()
        exporters[1].process.wait(10)
        killed_at = time.time()

        async def marked_down() -> bool:
            return backend.stats().down == 1

        await eventually(marked_down, "the killed exporter is marked down")
        down = next(t for t in backend.stats().targets if not t.up)
        assert down.url == f"{exporters[1].url}/metrics"
        assert down.node == "gpu-node-1"
        assert down.error

        async def stale_node_absent() -> bool:
            result = await backend.values("gpu_utilization", "nodes", nodes)
            if nodes[1] in result:
                # Served only from samples taken before the kill, and only within the window.
                assert result[nodes[1]].timestamp <= killed_at
                assert time.time() - result[nodes[1]].timestamp <= WINDOW + 1
                return False
            return set(result) == {nodes[0], nodes[2]}

        await eventually(stale_node_absent, "the dead node's values leave the window", timeout=WINDOW + 10)
        fresh = await backend.values("gpu_utilization", "nodes", [nodes[0], nodes[2]])
        assert all(time.time() - sample.timestamp < WINDOW for sample in fresh.values())

        for exporter in (exporters[0], exporters[2]):
            exporter.process.kill()
            exporter.process.wait(10)

        async def all_down() -> bool:
            return backend.stats().down == 3

        await eventually(all_down, "every exporter is marked down")
        assert not backend.ready
        with pytest.raises(BackendUnavailable) as info:
            await backend.values("gpu_utilization", "nodes", nodes)
        assert all(f"{e.url}/metrics" in str(info.value) for e in exporters)
    finally:
        await backend.close()


P1, P2, P3 = ("ml", "train-0", "main"), ("ml", "train-1", "main"), ("web", "infer-0", "server")


@pytest.fixture
def node_servers() -> Iterator[list[ExpositionServer]]:
    """Two exporters' worth of exposition with pod attribution, as the exporter labels it."""
    servers = [
        ExpositionServer(
            exposition(
                [
                    FakeGpu("0", "GPU-a0", 0.4, 20 * GIB, 80 * GIB, holders=[P1]),
                    FakeGpu(
                        "1",
                        "GPU-a1",
                        0.9,
                        30 * GIB,
                        80 * GIB,
                        holders=[P2, P3],
                        observed_utilization={P2: 0.6, P3: 0.3},
                        observed_memory={P2: 20 * GIB, P3: 10 * GIB},
                    ),
                ],
                node="node-a",
            )
        ).start(),
        ExpositionServer(
            exposition([FakeGpu("0", "GPU-b0", 0.2, 8 * GIB, 80 * GIB, holders=[P3])], node="node-b")
        ).start(),
    ]
    yield servers
    for server in servers:
        if server.port:
            server.stop()


async def test_pod_attribution_across_nodes_and_a_node_dying(node_servers: list[ExpositionServer]) -> None:
    backend = DirectBackend(
        StaticTargets([s.url for s in node_servers]), scrape_interval=INTERVAL, window_seconds=WINDOW
    )
    pods = [ObjectKey("ml", "train-0"), ObjectKey("ml", "train-1"), ObjectKey("web", "infer-0")]
    await backend.start()
    try:

        async def ready() -> bool:
            return backend.ready and backend.stats().up == 2

        await eventually(ready, "both servers scraped")
        utilization = await backend.values("gpu_utilization", "pods", pods)
        assert utilization[pods[0]].value == pytest.approx(40.0)
        assert utilization[pods[1]].value == pytest.approx(60.0)
        assert utilization[pods[2]].value == pytest.approx((30.0 + 20.0) / 2)
        used = await backend.values("gpu_memory_used_bytes", "pods", pods)
        assert used[pods[2]].value == 10 * GIB + 8 * GIB
        workload = await backend.aggregate("gpu_memory_used_bytes", pods[:2])
        assert workload is not None
        assert workload.value == 40 * GIB

        node_servers[1].stop()
        node_servers[1].port = 0

        async def only_node_a_left() -> bool:
            result = await backend.values("gpu_memory_used_bytes", "pods", pods)
            return (
                backend.stats().down == 1
                and result.get(pods[2]) is not None
                and result[pods[2]].value == 10 * GIB
            )

        await eventually(only_node_a_left, "infer-0 keeps only its node-a share", timeout=WINDOW + 10)
        nodes = await backend.values(
            "gpu_utilization", "nodes", [ObjectKey("", "node-a"), ObjectKey("", "node-b")]
        )
        assert set(nodes) == {ObjectKey("", "node-a")}
    finally:
        await backend.close()
