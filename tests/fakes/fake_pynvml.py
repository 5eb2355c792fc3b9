"""A stand-in for nvidia-ml-py's ``pynvml`` with scripted GPUs behind it.

Constants, error classes and result structures are the real module's own (importing ``pynvml``
needs no driver; only ``nvmlInit`` loads the library), so code that passes against this fake uses
the real names. The functions keep the real names and parameters; ``FakeNvml.module()`` binds them
into a module object that can stand in ``sys.modules["pynvml"]`` or be passed to the source.
"""

# ruff: noqa: N802, N803 - the functions and parameters keep pynvml's names

from __future__ import annotations

import inspect
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pynvml as real

GIB = 1024**3
MIB = 1024**2


@dataclass
class FakeMig:
    """A MIG device (one compute instance of one GPU instance)."""

    uuid: str
    gpu_instance_id: int
    compute_instance_id: int = 0
    name: str = "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    gpu_instance_slices: int = 1
    compute_instance_slices: int = 1
    memory_mib: int = 9856
    memory_used: int = 1 * GIB
    compute_processes: list[tuple[int, int | None]] = field(default_factory=list)


@dataclass
class FakeGpu:
    """One physical GPU; ``errors`` maps an NVML function name to the ``NVML_ERROR_*`` it raises here."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    pci_bus_id: str = "00000000:18:00.0"
    gpu_util: int = 50
    memory_util: int = 20
    memory_total: int = 80 * GIB
    memory_used: int = 10 * GIB
    memory_reserved: int = 512 * MIB
    temperature: int = 41
    power_mw: int = 312_500
    power_limit_mw: int = 700_000
    energy_mj: int = 123_456_789
    sm_clock_mhz: int = 1980
    memory_clock_mhz: int = 2619
    clock_reasons: int = 0
    ecc: tuple[int, int] = (0, 0)
    mig_enabled: bool | None = None
    max_mig_devices: int = 7
    migs: list[FakeMig] = field(default_factory=list)
    compute_processes: list[tuple[int, int | None]] = field(default_factory=list)
    graphics_processes: list[tuple[int, int | None]] = field(default_factory=list)
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # pid, timestamp (us), SM %
    errors: dict[str, int] = field(default_factory=dict)
    lost: bool = False
    events_supported: bool = True


@dataclass(frozen=True, eq=False)
class FakeHandle:
    """Opaque like ``c_nvmlDevice_t``; one per device, stable for the session as NVML's are."""

    gpu: FakeGpu
    mig: FakeMig | None = None


class FakeEventSet:
    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.registered: list[FakeHandle] = []
        self.freed = False


class FakeNvml:
    """Scripted NVML: GPUs, errors per function and device, XID events, and a log of calls."""

    def __init__(
        self,
        gpus: list[FakeGpu],
        *,
        driver_version: str = "580.159.04",
        init_error: int | None = None,
        memory_v2: bool = True,
        clock_event_reasons: bool = True,
    ) -> None:
        self.gpus = gpus
        self.driver_version = driver_version
        self.init_error = init_error
        self.memory_v2 = memory_v2
        self.clock_event_reasons = clock_event_reasons
        self.calls: Counter[str] = Counter()
        self.process_utilization_since: list[int] = []
        self.event_sets: list[FakeEventSet] = []
        self.initialised = 0
        self._lock = threading.Lock()
        self._handles: dict[tuple[str, str], FakeHandle] = {}

    def module(self) -> ModuleType:
        """A module object exposing this fake under ``pynvml``'s names."""
        module = ModuleType("pynvml")
        for name in dir(real):
            value = getattr(real, name)
            if name.startswith(("NVML", "nvml")) and not inspect.isfunction(value):
                setattr(module, name, value)
        for name in FAKE_FUNCTIONS:
            if name == "nvmlDeviceGetCurrentClocksEventReasons" and not self.clock_event_reasons:
                continue
            setattr(module, name, getattr(self, name))
        return module

    # -- scripting -----------------------------------------------------------------------------

    def inject_xid(self, gpu: FakeGpu, xid: int, gpu_instance_id: int = 0xFFFFFFFF) -> None:
        """Deliver an XID critical-error event to every event set ``gpu`` is registered with."""
        handle = self._handle(gpu)
        for event_set in self.event_sets:
            if handle in event_set.registered:
                data = {
                    "device": handle,
                    "eventType": real.nvmlEventTypeXidCriticalError,
                    "eventData": xid,
                    "gpuInstanceId": gpu_instance_id,
                    "computeInstanceId": 0xFFFFFFFF,
                }
                assert set(data) == {name for name, _ in real.c_nvmlEventData_t._fields_}
                event_set.queue.put(real.nvmlFriendlyObject(data))

    def _handle(self, gpu: FakeGpu, mig: FakeMig | None = None) -> FakeHandle:
        key = (gpu.uuid, mig.uuid if mig else "")
        with self._lock:
            return self._handles.setdefault(key, FakeHandle(gpu, mig))

    def _call(self, function: str, handle: FakeHandle | None = None) -> None:
        with self._lock:
            self.calls[function] += 1
        if self.initialised <= 0 and function != "nvmlInit":
            raise real.NVMLError(real.NVML_ERROR_UNINITIALIZED)
        if handle is not None:
            if handle.gpu.lost:
                raise real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
            if function in handle.gpu.errors:
                raise real.NVMLError(handle.gpu.errors[function])

    # -- library -------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._call("nvmlInit")
        if self.init_error is not None:
            raise real.NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._call("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        if index >= len(self.gpus):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        handle = self._handle(self.gpus[index])
        self._call("nvmlDeviceGetHandleByIndex", handle)
        return handle

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeHandle:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                handle = self._handle(gpu)
                self._call("nvmlDeviceGetHandleByUUID", handle)
                return handle
        raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)

    # -- identity ------------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        self._call("nvmlDeviceGetName", handle)
        return handle.mig.name if handle.mig else handle.gpu.name

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        self._call("nvmlDeviceGetUUID", handle)
        return handle.mig.uuid if handle.mig else handle.gpu.uuid

    def nvmlDeviceGetPciInfo(self, handle: FakeHandle) -> Any:
        self._call("nvmlDeviceGetPciInfo", handle)
        info = real.nvmlPciInfo_t()
        info.busId = handle.gpu.pci_bus_id.encode()
        return info

    # -- MIG -----------------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, device: FakeHandle) -> list[int]:
        self._call("nvmlDeviceGetMigMode", device)
        if device.gpu.mig_enabled is None:
            raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)
        mode = real.NVML_DEVICE_MIG_ENABLE if device.gpu.mig_enabled else real.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, device: FakeHandle) -> int:
        self._call("nvmlDeviceGetMaxMigDeviceCount", device)
        return device.gpu.max_mig_devices

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: FakeHandle, index: int) -> FakeHandle:
        self._call("nvmlDeviceGetMigDeviceHandleByIndex", device)
        if index >= len(device.gpu.migs):
            raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
        return self._handle(device.gpu, device.gpu.migs[index])

    def nvmlDeviceGetGpuInstanceId(self, device: FakeHandle) -> int:
        self._call("nvmlDeviceGetGpuInstanceId", device)
        if device.mig is None:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return device.mig.gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, device: FakeHandle) -> int:
        self._call("nvmlDeviceGetComputeInstanceId", device)
        if device.mig is None:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return device.mig.compute_instance_id

    def nvmlDeviceGetAttributes(self, device: FakeHandle) -> Any:
        self._call("nvmlDeviceGetAttributes", device)
        attrs = real.c_nvmlDeviceAttributes()
        if device.mig is not None:
            attrs.gpuInstanceSliceCount = device.mig.gpu_instance_slices
            attrs.computeInstanceSliceCount = device.mig.compute_instance_slices
            attrs.memorySizeMB = device.mig.memory_mib
        return attrs

    # -- fields --------------------------------------------------------------------------------

    def _whole_gpu(self, function: str, handle: FakeHandle) -> FakeGpu:
        self._call(function, handle)
        if handle.mig is not None:
            raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)
        return handle.gpu

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> Any:
        gpu = self._whole_gpu("nvmlDeviceGetUtilizationRates", handle)
        util = real.c_nvmlUtilization_t()
        util.gpu, util.memory = gpu.gpu_util, gpu.memory_util
        return util

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: int | None = None) -> Any:
        self._call("nvmlDeviceGetMemoryInfo", handle)
        if handle.mig is not None:
            total, used, reserved = handle.mig.memory_mib * MIB, handle.mig.memory_used, 0
        else:
            total, used, reserved = (
                handle.gpu.memory_total,
                handle.gpu.memory_used,
                handle.gpu.memory_reserved,
            )
        if not version:
            memory = real.c_nvmlMemory_t()
            memory.total, memory.used, memory.free = total, used + reserved, total - used - reserved
            return memory
        if not self.memory_v2:
            raise real.NVMLError(real.NVML_ERROR_FUNCTION_NOT_FOUND)
        memory_v2 = real.c_nvmlMemory_v2_t()
        memory_v2.version = version
        memory_v2.total, memory_v2.reserved = total, reserved
        memory_v2.used, memory_v2.free = used, total - used - reserved
        return memory_v2

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        assert sensor == real.NVML_TEMPERATURE_GPU
        return self._whole_gpu("nvmlDeviceGetTemperature", handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._whole_gpu("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._whole_gpu("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        return self._whole_gpu("nvmlDeviceGetTotalEnergyConsumption", handle).energy_mj

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, type: int) -> int:
        gpu = self._whole_gpu("nvmlDeviceGetClockInfo", handle)
        clocks = {real.NVML_CLOCK_SM: gpu.sm_clock_mhz, real.NVML_CLOCK_MEM: gpu.memory_clock_mhz}
        if type not in clocks:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return clocks[type]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeHandle) -> int:
        return self._whole_gpu("nvmlDeviceGetCurrentClocksEventReasons", handle).clock_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeHandle) -> int:
        return self._whole_gpu("nvmlDeviceGetCurrentClocksThrottleReasons", handle).clock_reasons

    def nvmlDeviceGetTotalEccErrors(self, handle: FakeHandle, errorType: int, counterType: int) -> int:
        gpu = self._whole_gpu("nvmlDeviceGetTotalEccErrors", handle)
        assert counterType == real.NVML_VOLATILE_ECC
        return gpu.ecc[errorType]

    # -- processes -----------------------------------------------------------------------------

    def _processes(
        self, function: str, handle: FakeHandle, listed: list[tuple[int, int | None]]
    ) -> list[Any]:
        self._call(function, handle)
        gi = handle.mig.gpu_instance_id if handle.mig else 0xFFFFFFFF
        ci = handle.mig.compute_instance_id if handle.mig else 0xFFFFFFFF
        fields = {name for name, _ in real.c_nvmlProcessInfo_v3_t._fields_}
        found = []
        for pid, used in listed:
            info = {"pid": pid, "usedGpuMemory": used, "gpuInstanceId": gi, "computeInstanceId": ci}
            assert set(info) == fields
            found.append(real.nvmlFriendlyObject(info))
        return found

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        listed = handle.mig.compute_processes if handle.mig else handle.gpu.compute_processes
        return self._processes("nvmlDeviceGetComputeRunningProcesses", handle, listed)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        listed = [] if handle.mig else handle.gpu.graphics_processes
        return self._processes("nvmlDeviceGetGraphicsRunningProcesses", handle, listed)

    def nvmlDeviceGetProcessUtilization(self, handle: FakeHandle, timeStamp: int) -> list[Any]:
        gpu = self._whole_gpu("nvmlDeviceGetProcessUtilization", handle)
        self.process_utilization_since.append(timeStamp)
        samples = []
        for pid, at, sm in gpu.samples:
            if at > timeStamp:
                sample = real.c_nvmlProcessUtilizationSample_t()
                sample.pid, sample.timeStamp, sample.smUtil = pid, at, sm
                samples.append(sample)
        if not samples:
            raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
        return samples

    # -- events --------------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> FakeEventSet:
        self._call("nvmlEventSetCreate")
        event_set = FakeEventSet()
        self.event_sets.append(event_set)
        return event_set

    def nvmlDeviceRegisterEvents(self, handle: FakeHandle, eventTypes: int, eventSet: FakeEventSet) -> None:
        self._call("nvmlDeviceRegisterEvents", handle)
        if not handle.gpu.events_supported:
            raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)
        assert eventTypes & real.nvmlEventTypeXidCriticalError
        eventSet.registered.append(handle)

    def nvmlEventSetWait_v2(self, eventSet: FakeEventSet, timeoutms: int) -> Any:
        self._call("nvmlEventSetWait_v2")
        try:
            return eventSet.queue.get(timeout=timeoutms / 1000.0)
        except queue.Empty:
            raise real.NVMLError(real.NVML_ERROR_TIMEOUT) from None

    def nvmlEventSetFree(self, eventSet: FakeEventSet) -> None:
        self._call("nvmlEventSetFree")
        eventSet.freed = True


FAKE_FUNCTIONS = tuple(name for name in vars(FakeNvml) if name.startswith("nvml"))
