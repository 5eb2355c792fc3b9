"""NVML faults injected into the running exporter process: init failing then succeeding, GPUs lost and
back, fields that stop being supported. The exporter is the real command line over the scripted fake
NVML (``tests.fakes.nvml_launcher``); each fault keeps the scrape fast, ``kgm_nvml_up`` truthful, the
log readable, and recovers without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from tests.integration.processes import Server, metrics, start, value, write_json
from tests.support import wait_until

BASE_FLAGS = ["--host-metrics", "false", "--pod-resources-socket", "", "--log-format", "logfmt"]
# A scrape while NVML misbehaves must stay well inside Prometheus' default 10 s scrape timeout.
SCRAPE_BUDGET_SECONDS = 1.0


def gpu(uuid: str, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid, **fields}


class Node:
    """A running exporter over a fake NVML whose state the test rewrites."""

    def __init__(self, server: Server, control: Path) -> None:
        self.server = server
        self.control = control

    def set(self, *gpus: dict[str, Any], init_error: int | None = None, driver: str = "loaded") -> None:
        write_json(self.control, {"init_error": init_error, "driver": driver, "gpus": list(gpus)})

    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        started = time.monotonic()
        found = metrics(self.server)
        assert time.monotonic() - started < SCRAPE_BUDGET_SECONDS
        return found

    def eventually(self, what: str, check: Any, timeout: float = 20) -> dict[str, Any]:
        """Scrape until ``check(metrics)`` holds; returns the metrics that satisfied it."""
        last: dict[str, Any] = {}

        def holds() -> bool:
            nonlocal last
            last = self.scrape()
            return bool(check(last))

        holds.__name__ = what
        wait_until(holds, timeout=timeout, interval=0.2)
        return last


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Any]:
    nodes: list[Node] = []

    def launch(*gpus: dict[str, Any], source: str = "nvml", init_error: int | None = None) -> Node:
        control = tmp_path / f"nvml-{len(nodes)}.json"
        write_json(control, {"init_error": init_error, "gpus": list(gpus)})
        server = start(
            "tests.fakes.nvml_launcher",
            ["--gpu-source", source, *BASE_FLAGS],
            tmp_path / f"exporter-{len(nodes)}.log",
            env={"KGM_TEST_NVML_CONTROL": str(control)},
        )
        node = Node(server, control)
        nodes.append(node)
        server.wait_answers("/readyz")
        return node

    yield launch
    for node in nodes:
        assert node.server.stop() == 0, node.server.log()


@pytest.mark.parametrize("source", ["nvml", "auto"])
def test_nvml_init_failing_then_succeeding_is_picked_up_without_restart(start_node: Any, source: str) -> None:
    node = start_node(gpu("GPU-a"), source=source, init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    found = node.scrape()
    assert value(found, "kgm_nvml_up") == 0.0
    assert not found["gpu_utilization_ratio"]
    assert "NVML did not start; serving without GPU series (kgm_nvml_up 0) and retrying" in node.server.log()
    assert "Driver Not Loaded" in node.server.log()

    node.set(gpu("GPU-a", gpu_util=75))
    found = node.eventually("nvml opens", lambda m: value(m, "kgm_nvml_up") == 1.0)
    assert value(found, "gpu_utilization_ratio", uuid="GPU-a") == 0.75
    assert "nvml is available again; serving its gpus" in node.server.log()
    assert node.server.process.poll() is None


def test_a_node_without_the_nvml_library_serves_no_gpus_under_auto(start_node: Any) -> None:
    node = start_node(gpu("GPU-a"), source="auto", init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    assert value(node.scrape(), "kgm_nvml_up") == 0.0
    assert "NVML unavailable; exporting no GPU series" in node.server.log()


def test_gpus_lost_mid_run_drop_their_series_and_come_back(start_node: Any) -> None:
    node = start_node(gpu("GPU-a"), gpu("GPU-b", pci_bus_id="00000000:19:00.0"))
    found = node.scrape()
    assert value(found, "gpu_utilization_ratio", uuid="GPU-b") == 0.5

    node.set(gpu("GPU-a"), gpu("GPU-b", pci_bus_id="00000000:19:00.0", lost=True))
    found = node.eventually(
        "GPU-b's series gone", lambda m: value(m, "gpu_utilization_ratio", uuid="GPU-b") is None
    )
    assert value(found, "gpu_utilization_ratio", uuid="GPU-a") == 0.5
    assert (value(found, "kgm_gpu_field_errors", field="utilization", reason="gpu_lost") or 0) >= 1
    assert value(found, "kgm_nvml_up") == 1.0

    node.set(gpu("GPU-a", lost=True), gpu("GPU-b", pci_bus_id="00000000:19:00.0", lost=True))
    node.eventually("every gpu lost", lambda m: value(m, "kgm_nvml_up") == 0.0)
    node.eventually("lost gpus left out", lambda m: "gpu is lost; leaving it out" in node.server.log())

    node.set(gpu("GPU-a"), gpu("GPU-b", pci_bus_id="00000000:19:00.0"))
    found = node.eventually(
        "gpus back after a reset",
        lambda m: value(m, "kgm_nvml_up") == 1.0 and len(m["gpu_utilization_ratio"]) == 2,
    )
    assert value(found, "gpu_utilization_ratio", uuid="GPU-b") == 0.5


def test_fields_that_become_unsupported_drop_only_their_series(start_node: Any) -> None:
    not_supported = pynvml.NVML_ERROR_NOT_SUPPORTED
    node = start_node(gpu("GPU-a", errors={"nvmlDeviceGetTotalEccErrors": not_supported}))
    found = node.scrape()
    assert not found["gpu_ecc_errors"]
    assert value(found, "gpu_power_watts", uuid="GPU-a") == 312.5

    node.set(
        gpu(
            "GPU-a",
            errors={
                "nvmlDeviceGetTotalEccErrors": not_supported,
                "nvmlDeviceGetPowerUsage": not_supported,
                "nvmlDeviceGetTemperature": pynvml.NVML_ERROR_UNKNOWN,
            },
        )
    )
    found = node.eventually("power unsupported", lambda m: value(m, "gpu_power_watts", uuid="GPU-a") is None)
    assert value(found, "gpu_temperature_celsius", uuid="GPU-a") is None
    assert value(found, "gpu_utilization_ratio", uuid="GPU-a") == 0.5
    assert value(found, "gpu_memory_used_bytes", uuid="GPU-a") is not None
    assert (value(found, "kgm_gpu_field_errors", field="power", reason="not_supported") or 0) >= 1
    assert (value(found, "kgm_gpu_field_errors", field="temperature", reason="unknown") or 0) >= 1
    assert value(found, "kgm_exporter_scrape_collector_success", collector="gpu") == 1.0
    assert value(found, "kgm_nvml_up") == 1.0

    node.set(gpu("GPU-a"))
    node.eventually("power back", lambda m: value(m, "gpu_power_watts", uuid="GPU-a") == 312.5)


def test_driver_unloaded_mid_run_is_reported_and_nvml_initialised_again(start_node: Any) -> None:
    node = start_node(gpu("GPU-a"))
    assert value(node.scrape(), "kgm_nvml_up") == 1.0

    node.set(gpu("GPU-a"), driver="unloaded")
    found = node.eventually("nvml down", lambda m: value(m, "kgm_nvml_up") == 0.0)
    assert value(found, "gpu_utilization_ratio", uuid="GPU-a") is None
    assert (value(found, "kgm_gpu_field_errors", field="utilization", reason="unknown") or 0) >= 1
    assert "nvml is not answering; kgm_nvml_up is 0 until it does" in node.server.log()

    node.set(gpu("GPU-a", gpu_util=30))
    found = node.eventually("nvml back", lambda m: value(m, "kgm_nvml_up") == 1.0)
    node.eventually("series back", lambda m: value(m, "gpu_utilization_ratio", uuid="GPU-a") == 0.3)
    assert "nvml answering again" in node.server.log()
