"""dcgm-exporter compatibility view: names, units, types and labels of the core fields."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.collectors.dcgm_compat import DCGM_FIELDS, LABELS, DcgmCompatView
from exporter.config import parse_config
from exporter.gpu.model import Field, GpuDevice, GpuReading, ProcessUsage
from exporter.pods.model import ContainerRef
from exporter.registry import build_registry
from tests.fakes.holders import Holders

MIB = 1024 * 1024
WHOLE = GpuDevice("1", "GPU-aaaa", "NVIDIA H100 80GB HBM3", "00000000:19:00.0", "580.65.06")
MIG = GpuDevice(
    "0/3",
    "MIG-bbbb",
    "NVIDIA A100-SXM4-80GB",
    "00000000:18:00.0",
    "580.65.06",
    mig_mode="enabled",
    parent_uuid="GPU-parent",
    mig_profile="2g.20gb",
)
VALUES = {
    Field.UTILIZATION: 0.42,
    Field.MEMORY_UTILIZATION: 0.25,
    Field.MEMORY_USED: 2048.0 * MIB,
    Field.MEMORY_FREE: 6144.0 * MIB,
    Field.TEMPERATURE: 61.0,
    Field.POWER: 312.5,
    Field.ENERGY: 1234.5,
    Field.SM_CLOCK: 1980e6,
    Field.MEMORY_CLOCK: 2619e6,
}


def samples(readings: list[GpuReading], holders: Holders) -> dict[str, list[tuple[dict[str, str], float]]]:
    result: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in DcgmCompatView("node-7").families(readings, holders):
        for sample in family.samples:
            result.setdefault(sample.name, []).append((sample.labels, sample.value))
    return result


def test_units_follow_dcgm_exporter() -> None:
    got = samples([GpuReading(WHOLE, dict(VALUES))], Holders({}))
    value = {name: series[0][1] for name, series in got.items()}
    assert value == pytest.approx(
        {
            "DCGM_FI_DEV_GPU_UTIL": 42.0,
            "DCGM_FI_DEV_MEM_COPY_UTIL": 25.0,
            "DCGM_FI_DEV_FB_USED": 2048.0,
            "DCGM_FI_DEV_FB_FREE": 6144.0,
            "DCGM_FI_DEV_GPU_TEMP": 61.0,
            "DCGM_FI_DEV_POWER_USAGE": 312.5,
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 1234500.0,
            "DCGM_FI_DEV_SM_CLOCK": 1980.0,
            "DCGM_FI_DEV_MEM_CLOCK": 2619.0,
        }
    )


def test_types_are_dcgm_exporters() -> None:
    types = {spec.name: spec.type for spec in DCGM_FIELDS}
    assert types.pop("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION") == "unknown"
    assert set(types.values()) == {"gauge"}


def test_whole_gpu_labels_carry_its_sole_holder() -> None:
    holder = ContainerRef("ml", "train-0", "main")
    got = samples([GpuReading(WHOLE, dict(VALUES))], Holders({WHOLE.uuid: [holder]}))
    labels = got["DCGM_FI_DEV_GPU_UTIL"][0][0]
    assert labels == {
        "gpu": "1",
        "UUID": "GPU-aaaa",
        "pci_bus_id": "00000000:19:00.0",
        "device": "nvidia1",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": "node-7",
        "DCGM_FI_DRIVER_VERSION": "580.65.06",
        "GPU_I_PROFILE": "",
        "GPU_I_ID": "",
        "container": "main",
        "namespace": "ml",
        "pod": "train-0",
    }
    assert set(labels) == set(LABELS)


def test_shared_gpu_has_empty_pod_labels() -> None:
    holders = Holders({WHOLE.uuid: [ContainerRef("a", "p", "c"), ContainerRef("b", "q", "c")]})
    labels = samples([GpuReading(WHOLE, dict(VALUES))], holders)["DCGM_FI_DEV_FB_USED"][0][0]
    assert (labels["namespace"], labels["pod"], labels["container"]) == ("", "", "")


def test_mig_instance_names_parent_gpu_and_instance() -> None:
    labels = samples([GpuReading(MIG, dict(VALUES))], Holders({}))["DCGM_FI_DEV_GPU_UTIL"][0][0]
    assert labels["gpu"] == "0"
    assert labels["UUID"] == "GPU-parent"
    assert labels["device"] == "nvidia0"
    assert labels["GPU_I_PROFILE"] == "2g.20gb"
    assert labels["GPU_I_ID"] == "3"


def test_missing_field_drops_only_its_series() -> None:
    partial: dict[Field, float] = {k: v for k, v in VALUES.items() if k is not Field.POWER}
    got = samples([GpuReading(WHOLE, partial), GpuReading(MIG, dict(VALUES))], Holders({}))
    assert len(got["DCGM_FI_DEV_POWER_USAGE"]) == 1
    assert len(got["DCGM_FI_DEV_GPU_UTIL"]) == 2


class OneGpu:
    name = "simulated"
    up = True

    def devices(self) -> Sequence[GpuDevice]:
        return [WHOLE]

    def read(self, device: GpuDevice) -> GpuReading:
        return GpuReading(device, dict(VALUES))

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return ()

    def close(self) -> None:
        """Nothing to release."""


def test_registry_exposes_dcgm_names_next_to_ours_in_openmetrics() -> None:
    registry = build_registry(
        source=OneGpu(), holders=Holders({}), extra=[], node="node-7", views=(DcgmCompatView("node-7"),)
    )
    text = generate_latest(registry).decode()  # type: ignore[no-untyped-call]
    families = {f.name: f for f in text_string_to_metric_families(text)}  # type: ignore[no-untyped-call]
    energy = families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    assert energy.type == "unknown"
    assert [s.name for s in energy.samples] == ["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    assert families["DCGM_FI_DEV_GPU_UTIL"].type == "gauge"
    assert "gpu_utilization_ratio" in families


def test_compat_flag_and_env_twin() -> None:
    assert parse_config([], environ={}).compat == "none"
    assert parse_config(["--compat", "dcgm"], environ={}).compat == "dcgm"
    assert parse_config([], environ={"KGM_COMPAT": "dcgm"}).compat == "dcgm"
    with pytest.raises(SystemExit):
        parse_config(["--compat", "nvsmi"], environ={})
