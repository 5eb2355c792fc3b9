"""Values that cross the GPU-source seam: device identities and per-scrape readings."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Field(StrEnum):
    """One reading a source may supply; each maps to one metric family in the GPU collector."""

    UTILIZATION = "utilization"
    MEMORY_UTILIZATION = "memory_utilization"
    MEMORY_USED = "memory_used"
    MEMORY_FREE = "memory_free"
    MEMORY_TOTAL = "memory_total"
    MEMORY_RESERVED = "memory_reserved"
    TEMPERATURE = "temperature"
    POWER = "power"
    POWER_LIMIT = "power_limit"
    ENERGY = "energy"
    SM_CLOCK = "sm_clock"
    MEMORY_CLOCK = "memory_clock"
    THROTTLE_REASONS = "throttle_reasons"
    ECC_ERRORS = "ecc_errors"
    XID_ERRORS = "xid_errors"


class FieldFailure(StrEnum):
    """Why a field is missing from a reading; the collector counts failures by this reason."""

    NOT_SUPPORTED = "not_supported"
    GPU_LOST = "gpu_lost"
    NO_PERMISSION = "no_permission"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class GpuDevice:
    """A device the exporter reports: a whole GPU, or a MIG instance of one.

    ``index`` is the ``gpu`` label: the NVML index for a whole GPU and ``<parent index>/<GPU
    instance id>`` for a MIG instance, so every device series has a distinct, stable label.
    """

    index: str
    uuid: str
    model: str
    pci_bus_id: str
    driver_version: str
    mig_mode: str = "disabled"
    parent_uuid: str = ""
    mig_profile: str = ""

    @property
    def is_mig_instance(self) -> bool:
        return bool(self.parent_uuid)


@dataclass(frozen=True)
class FieldError:
    """A field a source could not read this time."""

    field: Field
    failure: FieldFailure
    detail: str = ""


@dataclass(frozen=True)
class GpuReading:
    """What a source read from one device during one scrape.

    ``values`` holds scalar fields in base units (ratios 0..1, bytes, celsius, watts, joules,
    hertz); ``labelled`` holds fields that are one sample per label value (throttle reason ->
    active 0/1, ECC error type -> count, XID code -> count). A field absent from both was not
    read; ``errors`` says why when the source tried and failed.
    """

    device: GpuDevice
    values: dict[Field, float] = field(default_factory=dict)
    labelled: dict[Field, dict[str, float]] = field(default_factory=dict)
    errors: tuple[FieldError, ...] = ()


@dataclass(frozen=True)
class ProcessUsage:
    """One process using a device: host PID, framebuffer it holds, SM utilisation share if sampled."""

    pid: int
    used_memory_bytes: int | None
    sm_utilization_ratio: float | None = None
