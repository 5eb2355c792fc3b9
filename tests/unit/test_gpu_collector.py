"""The GPU collector and the guarded registry: series per scrape, isolation of failures, holders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.guard import Collector
from exporter.gpu.model import Field, FieldError, FieldFailure, GpuDevice, GpuReading, ProcessUsage
from exporter.pods.model import ContainerRef, HolderSource
from exporter.registry import build_registry
from tests.fakes.holders import Holders


def device(index: int) -> GpuDevice:
    return GpuDevice(str(index), f"GPU-{index:08d}", "Test GPU", f"0000:{index:02x}:00.0", "580.1")


class ScriptedSource:
    """A source whose devices and per-field failures the test sets between scrapes."""

    name = "nvml"
    up = True

    def __init__(self, count: int) -> None:
        self.present = [device(i) for i in range(count)]
        self.failing: dict[tuple[str, Field], FieldFailure] = {}
        self.broken: set[str] = set()

    def devices(self) -> Sequence[GpuDevice]:
        return list(self.present)

    def read(self, device: GpuDevice) -> GpuReading:
        if device.uuid in self.broken:
            raise RuntimeError("device fell off the bus")
        values = {Field.UTILIZATION: 0.5, Field.MEMORY_USED: 1024.0, Field.TEMPERATURE: 40.0}
        errors = []
        for (uuid, field), failure in self.failing.items():
            if uuid == device.uuid:
                values.pop(field, None)
                errors.append(FieldError(field, failure))
        return GpuReading(device, values, {Field.ECC_ERRORS: {"corrected": 3.0}}, tuple(errors))

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return ()

    def close(self) -> None:
        """Nothing to release."""


def scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def registry_for(
    source: ScriptedSource,
    holders: HolderSource | None = None,
    extra: list[tuple[str, Collector]] | None = None,
) -> CollectorRegistry:
    return build_registry(source=source, holders=holders or Holders({}), extra=extra or [], node="node-a")


def test_series_follow_devices_between_scrapes() -> None:
    source = ScriptedSource(2)
    registry = registry_for(source)
    assert len(scrape(registry)["gpu_utilization_ratio"]) == 2
    source.present.pop()
    after = scrape(registry)
    assert [labels["gpu"] for labels, _ in after["gpu_utilization_ratio"]] == ["0"]
    assert [labels["gpu"] for labels, _ in after["gpu_info"]] == ["0"]


def test_failing_field_is_absent_and_counted() -> None:
    source = ScriptedSource(2)
    source.failing[("GPU-00000001", Field.TEMPERATURE)] = FieldFailure.NOT_SUPPORTED
    registry = registry_for(source)
    samples = scrape(registry)
    assert [labels["gpu"] for labels, _ in samples["gpu_temperature_celsius"]] == ["0"]
    assert len(samples["gpu_utilization_ratio"]) == 2
    assert ({"collector": "gpu"}, 0.0) in samples["kgm_exporter_collector_errors_total"]
    assert ({"field": "temperature", "reason": "not_supported"}, 1.0) in samples["kgm_gpu_field_errors_total"]
    assert ({"collector": "gpu"}, 1.0) in samples["kgm_exporter_scrape_collector_success"]
    source.failing[("GPU-00000000", Field.TEMPERATURE)] = FieldFailure.GPU_LOST
    samples = scrape(registry)
    assert "gpu_temperature_celsius" not in samples
    assert ({"collector": "gpu"}, 1.0) in samples["kgm_exporter_collector_errors_total"]
    assert ({"field": "temperature", "reason": "gpu_lost"}, 1.0) in samples["kgm_gpu_field_errors_total"]


def test_a_device_that_raises_costs_only_its_own_series() -> None:
    source = ScriptedSource(3)
    source.broken.add("GPU-00000001")
    samples = scrape(registry_for(source))
    assert sorted(labels["gpu"] for labels, _ in samples["gpu_utilization_ratio"]) == ["0", "2"]
    assert ({"field": "all", "reason": "RuntimeError"}, 1.0) in samples["kgm_gpu_field_errors_total"]


def test_sole_holder_labels_device_series_and_shared_devices_stay_unlabelled() -> None:
    alone = ContainerRef("ml", "trainer-0", "main")
    shared = [ContainerRef("ml", "infer-a", "srv"), ContainerRef("ml", "infer-b", "srv")]
    source = ScriptedSource(3)
    holders = Holders({"GPU-00000000": [alone], "GPU-00000001": shared})
    by_gpu = {
        labels["gpu"]: labels for labels, _ in scrape(registry_for(source, holders))["gpu_utilization_ratio"]
    }
    assert (by_gpu["0"]["namespace"], by_gpu["0"]["pod"], by_gpu["0"]["container"]) == (
        "ml",
        "trainer-0",
        "main",
    )
    assert (by_gpu["1"]["namespace"], by_gpu["1"]["pod"], by_gpu["1"]["container"]) == ("", "", "")
    assert by_gpu["2"]["pod"] == ""


def test_labelled_fields_become_one_series_per_label_value() -> None:
    samples = scrape(registry_for(ScriptedSource(1)))
    assert samples["gpu_ecc_errors_total"] == [
        (
            {
                "gpu": "0",
                "uuid": "GPU-00000000",
                "namespace": "",
                "pod": "",
                "container": "",
                "type": "corrected",
            },
            3.0,
        )
    ]
    info_labels = samples["gpu_info"][0][0]
    assert info_labels["node"] == "node-a"
    assert info_labels["model"] == "Test GPU"


class Exploding:
    def collect(self) -> Iterator[Metric]:
        raise OSError("disk stats unreadable")


def test_a_failing_collector_costs_only_its_own_series() -> None:
    samples = scrape(registry_for(ScriptedSource(1), extra=[("host", Exploding())]))
    assert len(samples["gpu_utilization_ratio"]) == 1
    assert ({"collector": "host"}, 0.0) in samples["kgm_exporter_scrape_collector_success"]
    assert ({"collector": "host"}, 1.0) in samples["kgm_exporter_collector_errors_total"]
    assert samples["kgm_nvml_up"] == [({}, 1.0)]
