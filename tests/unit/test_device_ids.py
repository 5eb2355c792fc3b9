"""Matching allocated device IDs of every known form to the devices the exporter reports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.gpu.model import GpuDevice
from exporter.pods.device_ids import (
    DEFAULT_RESOURCE_PATTERNS,
    match_device,
    parse_device_id,
    resource_matches,
)

GPU0 = GpuDevice(
    "0", "GPU-5a3c7a2e-7a0f-1b4d-9b8e-0c1d2e3f4a5b", "NVIDIA H100 80GB HBM3", "00000000:1B:00.0", "550"
)
GPU1 = GpuDevice(
    "1",
    "GPU-6b4d8b3f-8b1a-2c5e-8c9f-1d2e3f4a5b6c",
    "NVIDIA H100 80GB HBM3",
    "00000000:43:00.0",
    "550",
    mig_mode="enabled",
)
MIG_1_3 = GpuDevice(
    "1/3",
    "MIG-7c5e9c4a-9c2b-5d6f-9d0a-2e3f4a5b6c7d",
    "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
    "00000000:43:00.0",
    "550",
    mig_mode="enabled",
    parent_uuid=GPU1.uuid,
    mig_profile="1g.10gb",
)
MIG_1_5 = GpuDevice(
    "1/5",
    "MIG-8d6fad5b-ad3c-6e7a-ae1b-3f4a5b6c7d8e",
    "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
    "00000000:43:00.0",
    "550",
    mig_mode="enabled",
    parent_uuid=GPU1.uuid,
    mig_profile="3g.40gb",
)
DEVICES = (GPU0, GPU1, MIG_1_3, MIG_1_5)


@pytest.mark.parametrize(
    ("device_id", "device"),
    [
        (GPU0.uuid, GPU0),
        (GPU0.uuid.upper().replace("GPU-", "GPU-"), GPU0),
        (f"{GPU0.uuid}::0", GPU0),
        (f"{GPU0.uuid}::17", GPU0),
        (MIG_1_3.uuid, MIG_1_3),
        (f"{MIG_1_5.uuid}::2", MIG_1_5),
        (f"MIG-{GPU1.uuid}/3/0", MIG_1_3),  # drivers before R470
        (f"MIG-{GPU1.uuid}/5/1", MIG_1_5),
        ("0", GPU0),
        ("1", GPU1),
        (" 1 ", GPU1),
        ("nvidia0", GPU0),
        ("nvidia1", GPU1),
        ("nvidia0/vgpu3", GPU0),
        ("nvidia1/gi3", MIG_1_3),
        ("nvidia1/gi5/vgpu0", MIG_1_5),
        ("nvidia01", GPU1),
    ],
)
def test_every_form_finds_its_device(device_id: str, device: GpuDevice) -> None:
    assert match_device(device_id, DEVICES) == device


@pytest.mark.parametrize(
    "device_id",
    [
        "",
        "GPU-",
        "GPU-5a3c7a2e",
        "nvidia",
        "nvidia0/gi",
        "nvidia0/vgpu",
        "2",
        "nvidia2",
        "nvidia1/gi4",
        "GPU-00000000-0000-0000-0000-000000000000",
        "MIG-GPU-5a3c7a2e/1/0",
        "vendor.com/gpu=gpu0",
        "::3",
        f"{GPU0.uuid}::",
        f"{GPU0.uuid}::x",
        "-1",
        "1.0",
        "\u0661",  # an Arabic-Indic digit one
    ],
)
def test_unknown_or_malformed_ids_match_nothing(device_id: str) -> None:
    assert match_device(device_id, DEVICES) is None


def test_resource_patterns_are_globs() -> None:
    for name in (
        "nvidia.com/gpu",
        "nvidia.com/gpu.shared",
        "nvidia.com/mig-1g.10gb",
        "nvidia.com/mig-3g.40gb.shared",
    ):
        assert resource_matches(name, DEFAULT_RESOURCE_PATTERNS)
    for name in ("nvidia.com/gpus", "amd.com/gpu", "nvidia.com/mig", "cpu", "example.com/nvidia.com/gpu"):
        assert not resource_matches(name, DEFAULT_RESOURCE_PATTERNS)
    assert resource_matches("example.com/vgpu", ["example.com/*"])


@given(st.text())
def test_never_raises_on_arbitrary_text(text: str) -> None:
    parse_device_id(text)
    match_device(text, DEVICES)


@given(
    st.lists(st.sampled_from(["GPU-", "MIG-", "nvidia", "/gi", "/vgpu", "::", "0", "9", "-", "a", "/"])).map(
        "".join
    )
)
def test_never_raises_on_id_like_text(text: str) -> None:
    match_device(text, DEVICES)


@st.composite
def devices_and_ids(draw: st.DrawFn) -> tuple[tuple[GpuDevice, ...], str, GpuDevice]:
    """A node of whole GPUs and MIG instances, and a valid ID in any form for one of its devices."""
    gpu_count = draw(st.integers(1, 8))
    devices: list[GpuDevice] = []
    for index in range(gpu_count):
        gpu = GpuDevice(str(index), f"GPU-{draw(st.uuids())}", "m", "p", "d")
        devices.append(gpu)
        for instance in draw(st.sets(st.integers(1, 14), max_size=3)):
            devices.append(
                GpuDevice(
                    f"{index}/{instance}", f"MIG-{draw(st.uuids())}", "m", "p", "d", parent_uuid=gpu.uuid
                )
            )
    target = draw(st.sampled_from(devices))
    replica = draw(st.sampled_from(["", "::0", f"::{draw(st.integers(0, 999))}"]))
    vgpu = draw(st.sampled_from(["", f"/vgpu{draw(st.integers(0, 47))}"]))
    if target.is_mig_instance:
        parent, gpu_instance = target.index.split("/")
        forms = [
            target.uuid + replica,
            f"nvidia{parent}/gi{gpu_instance}{vgpu}",
            f"MIG-{target.parent_uuid}/{gpu_instance}/0",
        ]
    else:
        forms = [
            target.uuid + replica,
            target.uuid.upper().replace("GPU-", "GPU-") + replica,
            target.index,
            f"nvidia{target.index}{vgpu}",
        ]
    return tuple(devices), draw(st.sampled_from(forms)), target


@given(devices_and_ids())
def test_generated_ids_map_to_their_device(case: tuple[tuple[GpuDevice, ...], str, GpuDevice]) -> None:
    devices, device_id, target = case
    assert match_device(device_id, devices) == target
