"""The real GPU source: NVIDIA's NVML through ``nvidia-ml-py`` (imported as ``pynvml``).

Handles are opened once and again only on a slow timer or after a GPU is lost; each scrape makes
one NVML call per field (microseconds), except total energy (milliseconds on H100), which is cached
per device for a short time. XID errors arrive as NVML events on a background thread.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from exporter.gpu.mig import profile_from_attributes, profile_from_name
from exporter.gpu.model import Field, FieldError, FieldFailure, GpuDevice, GpuReading, ProcessUsage
from exporter.gpu.throttle import throttle_reasons

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY_FIELDS = (Field.MEMORY_USED, Field.MEMORY_FREE, Field.MEMORY_TOTAL)
# A MIG instance has its own memory and processes; the rest belongs to the physical GPU, whose own
# series carry it.
MIG_UNSUPPORTED_FIELDS = (
    Field.UTILIZATION,
    Field.MEMORY_UTILIZATION,
    Field.TEMPERATURE,
    Field.POWER,
    Field.POWER_LIMIT,
    Field.ENERGY,
    Field.SM_CLOCK,
    Field.MEMORY_CLOCK,
    Field.THROTTLE_REASONS,
    Field.ECC_ERRORS,
)
# After a GPU is lost, and until it is back, re-enumerate no more often than this, however often
# Prometheus scrapes.
LOST_RESCAN_SECONDS = 5.0
# nvmlEventData_t.gpuInstanceId when the event is not tied to a MIG instance.
NO_GPU_INSTANCE = 0xFFFFFFFF


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used now: the driver is not loaded, init failed, or devices could not be listed."""


class NvmlMissing(NvmlUnavailable):
    """No NVML on this node at all (no ``pynvml``, no ``libnvidia-ml``): waiting will not help."""


@dataclass(frozen=True)
class _Entry:
    """A device with the NVML handle it is read through."""

    device: GpuDevice
    handle: Any
    gpu_instance_id: int = NO_GPU_INSTANCE


@dataclass
class _EnergyCache:
    """The last total-energy read of one device: a value or the error, and when it was taken."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    read_at: float | None = None
    joules: float | None = None
    error: FieldError | None = None


def _text(value: str | bytes) -> str:
    """Older nvidia-ml-py releases return ``bytes`` where newer ones return ``str``."""
    return value.decode() if isinstance(value, bytes) else value


class NvmlGpuSource:
    """Reads whole GPUs and MIG instances through NVML; see ``open`` for how to start one."""

    name = "nvml"

    def __init__(
        self,
        nvml: ModuleType,
        *,
        energy_ttl_seconds: float = 10.0,
        rescan_interval_seconds: float = 60.0,
        watch_xid: bool = True,
        xid_wait_ms: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Take over an initialised ``pynvml`` module (``nvmlInit`` done); ``close`` shuts it down.

        ``energy_ttl_seconds`` is how long a total-energy reading is served from cache,
        ``rescan_interval_seconds`` how often devices are re-enumerated, ``xid_wait_ms`` how long
        the XID thread blocks in NVML at a time (and so about how long ``close`` may wait for it).
        """
        self._nvml = nvml
        self._energy_ttl = energy_ttl_seconds
        self._rescan_interval = rescan_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._scanned_at = 0.0
        self._lost: set[str] = set()
        self._lost_at_scan: set[int] = set()
        self._rescan_requested = False
        self._enumeration_error = ""
        self._memory_v1_only: set[str] = set()
        self._energy: dict[str, _EnergyCache] = {}
        self._process_seen: dict[str, int] = {}
        self._closed = False
        self._xid = _XidWatcher.start(nvml, xid_wait_ms, self._xid_target) if watch_xid else None
        try:
            self._rescan(initial=True)
        except BaseException:
            if self._xid is not None:
                self._xid.stop()
            raise

    @classmethod
    def open(
        cls,
        *,
        nvml: ModuleType | None = None,
        energy_ttl_seconds: float = 10.0,
        rescan_interval_seconds: float = 60.0,
        watch_xid: bool = True,
        xid_wait_ms: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> NvmlGpuSource:
        """Import ``pynvml`` (unless given), initialise NVML and enumerate the devices.

        Raises ``NvmlUnavailable`` with a message fit for a log line when any of that fails:
        ``NvmlMissing`` when the node has no NVML at all, the base class when trying later may help.
        """
        if nvml is None:
            try:
                nvml = importlib.import_module("pynvml")
            except ImportError as exc:
                raise NvmlMissing(f"nvidia-ml-py (pynvml) is not installed: {exc}") from exc
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            missing = exc.value == nvml.NVML_ERROR_LIBRARY_NOT_FOUND
            raise (NvmlMissing if missing else NvmlUnavailable)(f"NVML did not initialise: {exc}") from exc
        try:
            return cls(
                nvml,
                energy_ttl_seconds=energy_ttl_seconds,
                rescan_interval_seconds=rescan_interval_seconds,
                watch_xid=watch_xid,
                xid_wait_ms=xid_wait_ms,
                clock=clock,
            )
        except nvml.NVMLError as exc:
            _shutdown_quietly(nvml)
            raise NvmlUnavailable(f"NVML initialised but devices could not be listed: {exc}") from exc

    @property
    def up(self) -> bool:
        with self._lock:
            if self._closed or self._enumeration_error:
                return False
            if self._entries:
                return not all(uuid in self._lost for uuid in self._entries)
            return not self._lost_at_scan

    def devices(self) -> Sequence[GpuDevice]:
        with self._lock:
            if self._closed:
                return ()
            now = self._clock()
            # While a GPU is lost, keep looking on the short timer: after a reset it comes back.
            due = now - self._scanned_at >= self._rescan_interval or (
                (self._rescan_requested or self._lost_at_scan or self._enumeration_error)
                and now - self._scanned_at >= LOST_RESCAN_SECONDS
            )
        if due and self._scan_lock.acquire(blocking=False):
            try:
                self._rescan()
            finally:
                self._scan_lock.release()
        with self._lock:
            return tuple(entry.device for entry in self._entries.values())

    def read(self, device: GpuDevice) -> GpuReading:
        entry = self._entry(device)
        values: dict[Field, float] = {}
        labelled: dict[Field, dict[str, float]] = {}
        errors: list[FieldError] = []

        memory = self._attempt(
            entry, errors, (*MEMORY_FIELDS, Field.MEMORY_RESERVED), lambda: self._memory(entry)
        )
        if memory is not None:
            values.update(memory[0])
            errors.extend(memory[1])
        if device.is_mig_instance:
            errors.extend(
                FieldError(f, FieldFailure.NOT_SUPPORTED, "MIG instance") for f in MIG_UNSUPPORTED_FIELDS
            )
        else:
            self._read_whole_gpu(entry, errors, values, labelled)
        if self._xid is not None:
            xids = self._xid.counts(device.uuid, watched_as=device.parent_uuid or device.uuid)
            if xids is not None:
                labelled[Field.XID_ERRORS] = xids

        if not any(e.failure is FieldFailure.GPU_LOST for e in errors):
            with self._lock:
                self._lost.discard(device.uuid)
        return GpuReading(device=device, values=values, labelled=labelled, errors=tuple(errors))

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        """Compute and graphics processes merged by PID, with SM share from NVML's samples.

        A list NVML does not support on this device counts as empty; other NVML errors propagate.
        """
        nvml = self._nvml
        entry = self._entry(device)
        memory: dict[int, int | None] = {}
        for list_processes in (
            nvml.nvmlDeviceGetComputeRunningProcesses,
            nvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            try:
                found = list_processes(entry.handle)
            except nvml.NVMLError_NotSupported:
                continue
            except nvml.NVMLError_GpuIsLost:
                self._mark_lost(device.uuid)
                raise
            for proc in found:
                used = _used_memory(nvml, proc.usedGpuMemory)
                known = memory.get(proc.pid)
                # A process in both lists (graphics interop) holds one allocation, not two.
                memory[proc.pid] = used if known is None else max(known, used or 0)
        sm_share = self._sm_share(entry) if memory else {}
        return tuple(
            ProcessUsage(pid=pid, used_memory_bytes=used, sm_utilization_ratio=sm_share.get(pid))
            for pid, used in sorted(memory.items())
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._xid is not None:
            self._xid.stop()
        _shutdown_quietly(self._nvml)

    # -- enumeration -------------------------------------------------------------------------

    def _rescan(self, *, initial: bool = False) -> None:
        nvml = self._nvml
        now = self._clock()
        try:
            driver, count = self._driver_and_count()
        except nvml.NVMLError as exc:
            if initial:
                raise
            error = str(exc)
            with self._lock:
                self._scanned_at = now
                changed, self._enumeration_error = error != self._enumeration_error, error
            if changed:
                log.warning(
                    "nvml is not answering; kgm_nvml_up is 0 until it does, devices found before are kept",
                    extra={"error": error},
                )
            return
        with self._lock:
            recovered, self._enumeration_error = bool(self._enumeration_error), ""
        if recovered:
            log.info("nvml answering again", extra={"driver_version": driver})
        entries: dict[str, _Entry] = {}
        lost: set[int] = set()
        for index in range(count):
            try:
                for entry in self._enumerate_gpu(index, driver):
                    entries[entry.device.uuid] = entry
            except nvml.NVMLError_GpuIsLost:
                lost.add(index)
                if index not in self._lost_at_scan:
                    log.warning(
                        "gpu is lost; leaving it out until it answers again", extra={"gpu": str(index)}
                    )
            except nvml.NVMLError as exc:
                log.warning(
                    "gpu could not be opened; leaving it out", extra={"gpu": str(index), "error": str(exc)}
                )
        with self._lock:
            appeared = entries.keys() - self._entries.keys()
            gone = self._entries.keys() - entries.keys()
            self._entries = entries
            self._lost &= entries.keys()
            self._lost_at_scan = lost
            self._scanned_at = now
            self._rescan_requested = False
            for uuid in gone:
                self._energy.pop(uuid, None)
                self._process_seen.pop(uuid, None)
        if appeared or gone:
            log.info("nvml devices", extra={"devices": sorted(e.device.index for e in entries.values())})
        if self._xid is not None:
            self._xid.watch(e for e in entries.values() if not e.device.is_mig_instance)

    def _driver_and_count(self) -> tuple[str, int]:
        nvml = self._nvml
        try:
            return _text(nvml.nvmlSystemGetDriverVersion()), int(nvml.nvmlDeviceGetCount())
        except (nvml.NVMLError_Uninitialized, nvml.NVMLError_DriverNotLoaded):
            # The driver was unloaded (upgrade, reset) under us: NVML answers again only once
            # initialised again; the handles found before are stale, the rescan replaces them.
            nvml.nvmlInit()
            return _text(nvml.nvmlSystemGetDriverVersion()), int(nvml.nvmlDeviceGetCount())

    def _enumerate_gpu(self, index: int, driver: str) -> list[_Entry]:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        model = _text(nvml.nvmlDeviceGetName(handle))
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        pci_bus_id = _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
        try:
            mig_enabled = nvml.nvmlDeviceGetMigMode(handle)[0] == nvml.NVML_DEVICE_MIG_ENABLE
        except nvml.NVMLError_NotSupported:
            mig_enabled = False
        mig_mode = "enabled" if mig_enabled else "disabled"
        gpu = GpuDevice(
            index=str(index),
            uuid=uuid,
            model=model,
            pci_bus_id=pci_bus_id,
            driver_version=driver,
            mig_mode=mig_mode,
        )
        entries = [_Entry(gpu, handle)]
        if mig_enabled:
            entries.extend(self._enumerate_mig(gpu, handle))
        return entries

    def _enumerate_mig(self, gpu: GpuDevice, handle: Any) -> list[_Entry]:
        nvml = self._nvml
        found: list[tuple[int, int, Any]] = []
        for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                mig_handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except nvml.NVMLError_NotFound:
                continue
            gi = nvml.nvmlDeviceGetGpuInstanceId(mig_handle)
            ci = nvml.nvmlDeviceGetComputeInstanceId(mig_handle)
            found.append((gi, ci, mig_handle))
        per_gi = Counter(gi for gi, _, _ in found)
        parent_total: int | None = None
        entries = []
        for gi, ci, mig_handle in found:
            profile = profile_from_name(_text(nvml.nvmlDeviceGetName(mig_handle)))
            if not profile:
                if parent_total is None:
                    parent_total = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
                attrs = nvml.nvmlDeviceGetAttributes(mig_handle)
                profile = profile_from_attributes(
                    attrs.gpuInstanceSliceCount,
                    attrs.computeInstanceSliceCount,
                    attrs.memorySizeMB,
                    parent_total,
                )
            # One compute instance per GPU instance is the rule; where a GPU instance is split
            # further, the compute instance id keeps the label distinct (nvidia-smi's GPU/GI/CI).
            index = f"{gpu.index}/{gi}" if per_gi[gi] == 1 else f"{gpu.index}/{gi}/{ci}"
            device = GpuDevice(
                index=index,
                uuid=_text(nvml.nvmlDeviceGetUUID(mig_handle)),
                model=gpu.model,
                pci_bus_id=gpu.pci_bus_id,
                driver_version=gpu.driver_version,
                mig_mode=gpu.mig_mode,
                parent_uuid=gpu.uuid,
                mig_profile=profile,
            )
            entries.append(_Entry(device, mig_handle, gi))
        return entries

    # -- fields ------------------------------------------------------------------------------

    def _read_whole_gpu(
        self,
        entry: _Entry,
        errors: list[FieldError],
        values: dict[Field, float],
        labelled: dict[Field, dict[str, float]],
    ) -> None:
        nvml = self._nvml
        handle = entry.handle

        def attempt(reader: Callable[[], T], *fields: Field) -> T | None:
            return self._attempt(entry, errors, fields, reader)

        rates = attempt(
            lambda: nvml.nvmlDeviceGetUtilizationRates(handle), Field.UTILIZATION, Field.MEMORY_UTILIZATION
        )
        if rates is not None:
            values[Field.UTILIZATION] = rates.gpu / 100.0
            values[Field.MEMORY_UTILIZATION] = rates.memory / 100.0
        scalars: tuple[tuple[Field, Callable[[], float], float], ...] = (
            (
                Field.TEMPERATURE,
                lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
                1.0,
            ),
            (Field.POWER, lambda: nvml.nvmlDeviceGetPowerUsage(handle), 1e-3),
            (Field.POWER_LIMIT, lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle), 1e-3),
            (Field.SM_CLOCK, lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM), 1e6),
            (Field.MEMORY_CLOCK, lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM), 1e6),
        )
        for field_, reader, scale in scalars:
            value = attempt(reader, field_)
            if value is not None:
                values[field_] = value * scale
        mask = attempt(lambda: self._clock_event_reasons(handle), Field.THROTTLE_REASONS)
        if mask is not None:
            labelled[Field.THROTTLE_REASONS] = throttle_reasons(mask)
        ecc = attempt(lambda: self._ecc_counts(handle), Field.ECC_ERRORS)
        if ecc is not None:
            labelled[Field.ECC_ERRORS] = ecc
        energy = self._energy_joules(entry)
        if isinstance(energy, FieldError):
            errors.append(energy)
        else:
            values[Field.ENERGY] = energy

    def _attempt(
        self, entry: _Entry, errors: list[FieldError], fields: tuple[Field, ...], reader: Callable[[], T]
    ) -> T | None:
        """``reader()``, or ``None`` with one ``FieldError`` per field when NVML refuses."""
        try:
            return reader()
        except self._nvml.NVMLError as exc:
            failure = self._failure(exc, entry.device.uuid)
            errors.extend(FieldError(f, failure, str(exc)) for f in fields)
            return None

    def _memory(self, entry: _Entry) -> tuple[dict[Field, float], list[FieldError]]:
        """Memory sizes; ``reserved`` needs the v2 call, which older drivers and some devices lack."""
        nvml = self._nvml
        uuid = entry.device.uuid
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None and uuid not in self._memory_v1_only:
            try:
                info = nvml.nvmlDeviceGetMemoryInfo(entry.handle, version=version)
            except (
                nvml.NVMLError_FunctionNotFound,
                nvml.NVMLError_ArgumentVersionMismatch,
                nvml.NVMLError_NotSupported,
            ):
                with self._lock:
                    self._memory_v1_only.add(uuid)
            else:
                return {
                    Field.MEMORY_USED: float(info.used),
                    Field.MEMORY_FREE: float(info.free),
                    Field.MEMORY_TOTAL: float(info.total),
                    Field.MEMORY_RESERVED: float(info.reserved),
                }, []
        info = nvml.nvmlDeviceGetMemoryInfo(entry.handle)
        fields = {
            Field.MEMORY_USED: float(info.used),
            Field.MEMORY_FREE: float(info.free),
            Field.MEMORY_TOTAL: float(info.total),
        }
        return fields, [
            FieldError(Field.MEMORY_RESERVED, FieldFailure.NOT_SUPPORTED, "no memory info v2 here")
        ]

    def _clock_event_reasons(self, handle: Any) -> int:
        """The reasons bitmask; drivers before "clock event" reasons know only "throttle" reasons."""
        nvml = self._nvml
        current = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if current is not None:
            try:
                return int(current(handle))
            except nvml.NVMLError_FunctionNotFound:
                pass
        return int(nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))

    def _ecc_counts(self, handle: Any) -> dict[str, float]:
        nvml = self._nvml
        return {
            name: float(nvml.nvmlDeviceGetTotalEccErrors(handle, error_type, nvml.NVML_VOLATILE_ECC))
            for name, error_type in (
                ("corrected", nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                ("uncorrected", nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
            )
        }

    def _energy_joules(self, entry: _Entry) -> float | FieldError:
        """Total energy, read from NVML at most once per TTL; concurrent scrapes take the cached value."""
        uuid = entry.device.uuid
        with self._lock:
            cache = self._energy.setdefault(uuid, _EnergyCache())
        if self._energy_stale(cache) and cache.lock.acquire(blocking=cache.read_at is None):
            try:
                if self._energy_stale(cache):
                    errors: list[FieldError] = []
                    millijoules = self._attempt(
                        entry,
                        errors,
                        (Field.ENERGY,),
                        lambda: self._nvml.nvmlDeviceGetTotalEnergyConsumption(entry.handle),
                    )
                    cache.joules = None if millijoules is None else millijoules / 1000.0
                    cache.error = errors[0] if errors else None
                    cache.read_at = self._clock()
            finally:
                cache.lock.release()
        if cache.joules is not None:
            return cache.joules
        return cache.error or FieldError(Field.ENERGY, FieldFailure.UNKNOWN, "no reading yet")

    def _energy_stale(self, cache: _EnergyCache) -> bool:
        return cache.read_at is None or self._clock() - cache.read_at >= self._energy_ttl

    def _sm_share(self, entry: _Entry) -> dict[int, float]:
        """Mean SM utilisation per PID over the samples NVML took since the last call for this device."""
        nvml = self._nvml
        uuid = entry.device.uuid
        with self._lock:
            since = self._process_seen.get(uuid, 0)
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(entry.handle, since)
        except nvml.NVMLError_NotFound:
            return {}
        except nvml.NVMLError as exc:
            log.debug("process utilisation unavailable", extra={"gpu": entry.device.index, "error": str(exc)})
            return {}
        totals: dict[int, list[float]] = {}
        latest = since
        for sample in samples:
            if sample.timeStamp <= since:
                continue
            totals.setdefault(sample.pid, []).append(sample.smUtil / 100.0)
            latest = max(latest, sample.timeStamp)
        with self._lock:
            self._process_seen[uuid] = max(latest, self._process_seen.get(uuid, 0))
        return {pid: sum(shares) / len(shares) for pid, shares in totals.items()}

    # -- bookkeeping -------------------------------------------------------------------------

    def _entry(self, device: GpuDevice) -> _Entry:
        with self._lock:
            entry = None if self._closed else self._entries.get(device.uuid)
        if entry is None:
            raise LookupError(f"nvml: device {device.index} ({device.uuid}) is not open")
        return entry

    def _mark_lost(self, uuid: str) -> None:
        with self._lock:
            self._lost.add(uuid)
            self._rescan_requested = True

    def _failure(self, exc: Exception, uuid: str) -> FieldFailure:
        nvml = self._nvml
        if isinstance(exc, (nvml.NVMLError_NotSupported, nvml.NVMLError_FunctionNotFound)):
            return FieldFailure.NOT_SUPPORTED
        if isinstance(exc, nvml.NVMLError_GpuIsLost):
            self._mark_lost(uuid)
            return FieldFailure.GPU_LOST
        if isinstance(exc, nvml.NVMLError_NoPermission):
            return FieldFailure.NO_PERMISSION
        if isinstance(exc, (nvml.NVMLError_Uninitialized, nvml.NVMLError_DriverNotLoaded)):
            with self._lock:
                self._rescan_requested = True
        return FieldFailure.UNKNOWN

    def _xid_target(self, parent_uuid: str, gpu_instance_id: int) -> str:
        """The device an XID event is counted on: its MIG instance when NVML names one, else the GPU."""
        if gpu_instance_id != NO_GPU_INSTANCE:
            with self._lock:
                for entry in self._entries.values():
                    if entry.device.parent_uuid == parent_uuid and entry.gpu_instance_id == gpu_instance_id:
                        return entry.device.uuid
        return parent_uuid


class _XidWatcher:
    """A daemon thread waiting on an NVML event set for XID critical errors, counting them per device."""

    def __init__(
        self, nvml: ModuleType, event_set: Any, wait_ms: int, target: Callable[[str, int], str]
    ) -> None:
        self._nvml = nvml
        self._event_set = event_set
        self._wait_ms = wait_ms
        self._target = target
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending: list[_Entry] = []
        self._watched: set[str] = set()
        self._refused: set[str] = set()
        self._counts: dict[str, Counter[str]] = {}
        self._thread = threading.Thread(target=self._run, name="nvml-xid", daemon=True)

    @classmethod
    def start(cls, nvml: ModuleType, wait_ms: int, target: Callable[[str, int], str]) -> _XidWatcher | None:
        """A running watcher, or ``None`` (logged) when NVML cannot create event sets here.

        ``target(gpu_uuid, gpu_instance_id)`` names the device an event is counted on.
        """
        try:
            event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as exc:
            log.warning("nvml events unavailable; xid errors will not be counted", extra={"error": str(exc)})
            return None
        watcher = cls(nvml, event_set, wait_ms, target)
        watcher._thread.start()
        return watcher

    def watch(self, entries: Iterable[_Entry]) -> None:
        """Queue whole GPUs for registration; the thread registers them between waits."""
        with self._lock:
            self._pending.extend(e for e in entries if e.device.uuid not in self._watched)

    def counts(self, uuid: str, *, watched_as: str) -> dict[str, float] | None:
        """XID code -> count for ``uuid``; ``None`` unless the GPU ``watched_as`` is registered."""
        with self._lock:
            if watched_as not in self._watched:
                return None
            return {code: float(n) for code, n in self._counts.get(uuid, Counter()).items()}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._wait_ms / 1000.0 + 2.0)
        if self._thread.is_alive():
            log.warning("xid thread did not stop in time; leaving its event set allocated")
            return
        try:
            self._nvml.nvmlEventSetFree(self._event_set)
        except self._nvml.NVMLError as exc:
            log.debug("freeing the nvml event set failed", extra={"error": str(exc)})

    def _run(self) -> None:
        nvml = self._nvml
        while not self._stop.is_set():
            self._register_pending()
            try:
                data = nvml.nvmlEventSetWait_v2(self._event_set, self._wait_ms)
            except nvml.NVMLError_Timeout:
                continue
            except nvml.NVMLError as exc:
                log.debug("waiting for nvml events failed", extra={"error": str(exc)})
                self._stop.wait(self._wait_ms / 1000.0)
                continue
            if data.eventType == nvml.nvmlEventTypeXidCriticalError:
                self._count(data)

    def _count(self, data: Any) -> None:
        try:
            gpu = _text(self._nvml.nvmlDeviceGetUUID(data.device))
        except self._nvml.NVMLError as exc:
            log.warning(
                "xid event from a gpu that cannot be named", extra={"xid": data.eventData, "error": str(exc)}
            )
            return
        target = self._target(gpu, data.gpuInstanceId)
        log.warning("gpu xid error", extra={"uuid": target, "xid": data.eventData})
        with self._lock:
            self._counts.setdefault(target, Counter())[str(data.eventData)] += 1

    def _register_pending(self) -> None:
        nvml = self._nvml
        with self._lock:
            pending, self._pending = self._pending, []
        for entry in pending:
            uuid = entry.device.uuid
            try:
                nvml.nvmlDeviceRegisterEvents(
                    entry.handle, nvml.nvmlEventTypeXidCriticalError, self._event_set
                )
            except nvml.NVMLError as exc:
                if uuid not in self._refused:
                    self._refused.add(uuid)
                    log.info(
                        "xid events not available for this gpu",
                        extra={"gpu": entry.device.index, "error": str(exc)},
                    )
                continue
            with self._lock:
                self._watched.add(uuid)


def _used_memory(nvml: ModuleType, value: int | None) -> int | None:
    """``usedGpuMemory`` in bytes, or ``None`` where NVML cannot say (it reports all ones)."""
    if value is None or value == nvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value:
        return None
    return int(value)


def _shutdown_quietly(nvml: ModuleType) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError as exc:
        log.debug("nvml shutdown failed", extra={"error": str(exc)})
