"""An NVML-shaped module object: the simulated fleet's GPUs behind pynvml's own names.

``SimNVML`` stands in for the ``pynvml`` module (nvidia-ml-py) so that the NVML sampler runs the
same code on a real node and in the simulator. It is faithful where the sampler can tell:

- function names and argument orders of pynvml (``nvmlDeviceGetClockInfo(handle, NVML_CLOCK_SM)``);
- units: power in mW, energy in mJ (monotonic), memory in bytes, utilisation in percent;
- return types: pynvml's own ctypes structs (``c_nvmlUtilization_t`` with ``gpu``/``memory``,
  ``c_nvmlMemory_t`` with ``total``/``free``/``used``, ``c_nvmlProcessUtilizationSample_t``), the
  same "friendly objects" for running processes, ``str`` for names and UUIDs;
- errors: pynvml's own exception classes and codes (``pynvml.NVMLError_NotSupported`` ...), so
  ``except pynvml.NVMLError_GpuIsLost`` catches the simulator's errors too;
- constants (``NVML_*``, ``nvmlEventType*``, ``nvmlClocksEventReason*``) are pynvml's, looked up
  on the real module; pynvml functions the simulator does not implement raise AttributeError,
  as on an older pynvml.

The simulator mutates ``SimGpu`` fields each virtual second. A function name in
``SimGpu.unsupported`` raises ``NVMLError_NotSupported``; ``SimGpu.lost`` makes every call on the
handle raise ``NVMLError_GpuIsLost``; ``pending_xids`` are delivered by ``nvmlEventSetWait_v2``.
Process utilisation samples are stamped with the virtual time set by ``set_time(now_ns)``
(wall time if never set); asking for samples newer than the last one raises ``NVMLError_NotFound``
as the real library does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pynvml as _pynvml

NOT_AVAILABLE_UINT = 0xFFFFFFFF  # NVML_VALUE_NOT_AVAILABLE for unsigned int fields (e.g. gpuInstanceId)


@dataclass
class SimProcess:
    pid: int
    used_memory_bytes: int
    sm_util_pct: int
    name: str = "python3"
    mem_util_pct: int = 0


@dataclass
class SimMigDevice:
    """One MIG device (GPU instance + compute instance) of a MIG-enabled GPU."""

    uuid: str  # "MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    profile: str  # e.g. "1g.10gb", "3g.40gb"
    gpu_instance_id: int
    compute_instance_id: int = 0
    memory_total_bytes: int = 0
    memory_used_bytes: int = 0


@dataclass
class SimGpu:
    uuid: str
    index: int
    name: str  # e.g. "NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA A100-SXM4-80GB"
    pci_bus_id: str
    memory_total_bytes: int
    power_limit_mw: int
    # live state, mutated by the simulator each virtual second:
    sm_util_pct: int = 0
    mem_util_pct: int = 0
    memory_used_bytes: int = 0
    power_mw: int = 0
    energy_mj: int = 0  # monotonic (nvmlDeviceGetTotalEnergyConsumption)
    sm_clock_mhz: int = 0
    mem_clock_mhz: int = 0
    temperature_c: int = 30
    throttle_reasons: int = 0
    ecc_sbe: int = 0
    ecc_dbe: int = 0
    unsupported: set[str] = field(default_factory=set)  # pynvml function names raising NVMLError_NotSupported
    lost: bool = False  # every call on the handle raises NVMLError_GpuIsLost
    processes: list[SimProcess] = field(default_factory=list)
    pending_xids: list[int] = field(default_factory=list)  # delivered by nvmlEventSetWait(_v2)
    mig_mode: int = 0
    mig_devices: list[SimMigDevice] = field(default_factory=list)  # used when mig_mode == 1


class SimDeviceHandle:
    """The handle of a GPU (``nvmlDevice_t``); opaque to callers, as a real handle is."""

    __slots__ = ("gpu", "mig", "parent")

    def __init__(self, gpu: SimGpu, mig: SimMigDevice | None = None, parent: SimDeviceHandle | None = None):
        self.gpu = gpu
        self.mig = mig
        self.parent = parent

    def __repr__(self) -> str:
        return f"<SimDeviceHandle {self.mig.uuid if self.mig else self.gpu.uuid}>"


@dataclass
class SimEventData:
    """Same attribute names as pynvml's ``c_nvmlEventData_t``."""

    device: SimDeviceHandle
    eventType: int  # noqa: N815 - pynvml's field name
    eventData: int  # noqa: N815
    gpuInstanceId: int = NOT_AVAILABLE_UINT  # noqa: N815
    computeInstanceId: int = NOT_AVAILABLE_UINT  # noqa: N815


class SimEventSet:
    def __init__(self) -> None:
        self.registered: list[tuple[SimDeviceHandle, int]] = []
        self.freed = False


def _error(code: int) -> _pynvml.NVMLError:
    return _pynvml.NVMLError(code)  # pynvml maps the code to its subclass (NVMLError_NotSupported ...)


class SimNVML:
    """A module-like object exposing pynvml's names over simulated GPUs."""

    def __init__(self, gpus: list[SimGpu], driver_version: str = "580.105.08"):
        self.gpus = gpus
        self.driver_version = driver_version
        self._init_count = 0
        self._now_us: int | None = None
        self._lock = threading.Lock()
        self._events = threading.Condition(self._lock)
        self.calls = 0  # number of device calls served (benchmarks, tests)

    # ------------------------------------------------------------ pynvml's constants and classes

    def __getattr__(self, name: str) -> Any:
        value = getattr(_pynvml, name, None)
        if value is None or (name.startswith("nvml") and callable(value) and not isinstance(value, type)):
            raise AttributeError(f"SimNVML does not implement {name!r}")
        return value

    # ------------------------------------------------------------ simulator side

    def set_time(self, now_ns: int) -> None:
        """The virtual time; process utilisation samples are stamped with it (µs, as NVML)."""
        self._now_us = now_ns // 1000

    def inject_xid(self, uuid: str, xid: int) -> None:
        """Queue an Xid on the GPU ``uuid`` and wake any waiting ``nvmlEventSetWait``."""
        with self._events:
            self._gpu_by_uuid(uuid).pending_xids.append(xid)
            self._events.notify_all()

    def _gpu_by_uuid(self, uuid: str) -> SimGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise KeyError(uuid)

    def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass at the current power draw: the energy counters grow (mW x s = mJ)."""
        for gpu in self.gpus:
            if not gpu.lost:
                gpu.energy_mj += int(gpu.power_mw * dt_s)

    # ------------------------------------------------------------ helpers

    def _check_init(self) -> None:
        if self._init_count <= 0:
            raise _error(_pynvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: Any, fn: str) -> SimGpu:
        if self._init_count <= 0:
            raise _error(_pynvml.NVML_ERROR_UNINITIALIZED)
        if not isinstance(handle, SimDeviceHandle):
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu = handle.gpu
        self.calls += 1
        if gpu.lost:
            raise _error(_pynvml.NVML_ERROR_GPU_IS_LOST)
        if fn in gpu.unsupported:
            raise _error(_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def _whole_gpu(self, handle: Any, fn: str) -> SimGpu:
        """Functions that MIG device handles do not support (utilisation, power, clocks...)."""
        gpu = self._gpu(handle, fn)
        if handle.mig is not None:
            raise _error(_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    # ------------------------------------------------------------ library

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        self._init_count += 1

    def nvmlInitWithFlags(self, flags: int) -> None:  # noqa: N802
        self._init_count += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        if self._init_count <= 0:
            raise _error(_pynvml.NVML_ERROR_UNINITIALIZED)
        self._init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        self._check_init()
        return self.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:  # noqa: N802
        self._check_init()
        return "13." + self.driver_version

    def nvmlSystemGetProcessName(self, pid: int) -> str:  # noqa: N802
        self._check_init()
        for gpu in self.gpus:
            for proc in gpu.processes:
                if proc.pid == pid:
                    return proc.name
        raise _error(_pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimDeviceHandle:  # noqa: N802
        self._check_init()
        for gpu in self.gpus:
            if gpu.index == index:
                return SimDeviceHandle(gpu)
        raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> SimDeviceHandle:  # noqa: N802
        self._check_init()
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return SimDeviceHandle(gpu)
        raise _error(_pynvml.NVML_ERROR_NOT_FOUND)

    # ------------------------------------------------------------ identity

    def nvmlDeviceGetUUID(self, handle: Any) -> str:  # noqa: N802
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        return handle.mig.uuid if handle.mig else gpu.uuid

    def nvmlDeviceGetName(self, handle: Any) -> str:  # noqa: N802
        gpu = self._gpu(handle, "nvmlDeviceGetName")
        return f"{gpu.name} MIG {handle.mig.profile}" if handle.mig else gpu.name

    def nvmlDeviceGetIndex(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetIndex").index

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:  # noqa: N802
        gpu = self._whole_gpu(handle, "nvmlDeviceGetPciInfo")
        info = _pynvml.nvmlPciInfo_t()
        bus = gpu.pci_bus_id.encode()
        info.busId = bus
        info.busIdLegacy = bus[:16]
        return info

    # ------------------------------------------------------------ telemetry

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:  # noqa: N802
        gpu = self._whole_gpu(handle, "nvmlDeviceGetUtilizationRates")
        return _pynvml.c_nvmlUtilization_t(gpu.sm_util_pct, gpu.mem_util_pct)

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any:  # noqa: N802
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        total, used = (
            (handle.mig.memory_total_bytes, handle.mig.memory_used_bytes) if handle.mig
            else (gpu.memory_total_bytes, gpu.memory_used_bytes)
        )
        if version:
            mem = _pynvml.c_nvmlMemory_v2_t()
            mem.version, mem.total, mem.reserved, mem.free, mem.used = version, total, 0, max(total - used, 0), used
            return mem
        return _pynvml.c_nvmlMemory_t(total, max(total - used, 0), used)

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetPowerManagementLimit").power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetTotalEnergyConsumption").energy_mj

    def nvmlDeviceGetClockInfo(self, handle: Any, type: int) -> int:  # noqa: N802, A002 - pynvml's signature
        gpu = self._whole_gpu(handle, "nvmlDeviceGetClockInfo")
        if type in (_pynvml.NVML_CLOCK_SM, _pynvml.NVML_CLOCK_GRAPHICS):
            return gpu.sm_clock_mhz
        if type == _pynvml.NVML_CLOCK_MEM:
            return gpu.mem_clock_mhz
        raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetTemperatureV(self, handle: Any, sensor: int, version: int = _pynvml.nvmlTemperature_v1) -> int:  # noqa: N802
        gpu = self._whole_gpu(handle, "nvmlDeviceGetTemperatureV")
        if version != _pynvml.nvmlTemperature_v1:
            raise _error(_pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        if sensor != _pynvml.NVML_TEMPERATURE_GPU:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature_c

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:  # noqa: N802
        gpu = self._whole_gpu(handle, "nvmlDeviceGetTemperature")
        if sensor != _pynvml.NVML_TEMPERATURE_GPU:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature_c

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").throttle_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any) -> int:  # noqa: N802
        return self._whole_gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").throttle_reasons

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, errorType: int, counterType: int) -> int:  # noqa: N802, N803
        gpu = self._whole_gpu(handle, "nvmlDeviceGetTotalEccErrors")
        if counterType not in (_pynvml.NVML_VOLATILE_ECC, _pynvml.NVML_AGGREGATE_ECC):
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if errorType == _pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED:
            return gpu.ecc_sbe
        if errorType == _pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
            return gpu.ecc_dbe
        raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)

    # ------------------------------------------------------------ processes

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:  # noqa: N802
        gpu = self._whole_gpu(handle, "nvmlDeviceGetComputeRunningProcesses")
        return [
            _pynvml.nvmlFriendlyObject({
                "pid": p.pid,
                "usedGpuMemory": p.used_memory_bytes,
                "gpuInstanceId": NOT_AVAILABLE_UINT,
                "computeInstanceId": NOT_AVAILABLE_UINT,
            })
            for p in list(gpu.processes)
        ]

    def nvmlDeviceGetProcessUtilization(self, handle: Any, timeStamp: int) -> list[Any]:  # noqa: N802, N803
        gpu = self._whole_gpu(handle, "nvmlDeviceGetProcessUtilization")
        now_us = self._now_us if self._now_us is not None else time.time_ns() // 1000
        procs = list(gpu.processes)
        if not procs or now_us <= timeStamp:
            raise _error(_pynvml.NVML_ERROR_NOT_FOUND)  # no samples newer than timeStamp
        return [
            _pynvml.c_nvmlProcessUtilizationSample_t(p.pid, now_us, p.sm_util_pct, p.mem_util_pct, 0, 0)
            for p in procs
        ]

    # ------------------------------------------------------------ MIG

    def nvmlDeviceGetMigMode(self, device: Any) -> list[int]:  # noqa: N802
        gpu = self._whole_gpu(device, "nvmlDeviceGetMigMode")
        return [gpu.mig_mode, gpu.mig_mode]

    def nvmlDeviceIsMigDeviceHandle(self, device: Any) -> int:  # noqa: N802
        self._gpu(device, "nvmlDeviceIsMigDeviceHandle")
        return 1 if device.mig is not None else 0

    def nvmlDeviceGetMaxMigDeviceCount(self, device: Any) -> int:  # noqa: N802
        gpu = self._whole_gpu(device, "nvmlDeviceGetMaxMigDeviceCount")
        return 7 if gpu.mig_mode else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: Any, index: int) -> SimDeviceHandle:  # noqa: N802
        gpu = self._whole_gpu(device, "nvmlDeviceGetMigDeviceHandleByIndex")
        if not gpu.mig_mode:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if index >= 7:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(gpu.mig_devices):
            raise _error(_pynvml.NVML_ERROR_NOT_FOUND)
        return SimDeviceHandle(gpu, gpu.mig_devices[index], parent=device)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice: Any) -> SimDeviceHandle:  # noqa: N802, N803
        self._gpu(migDevice, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if migDevice.mig is None:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return migDevice.parent or SimDeviceHandle(migDevice.gpu)

    def nvmlDeviceGetGpuInstanceId(self, device: Any) -> int:  # noqa: N802
        self._gpu(device, "nvmlDeviceGetGpuInstanceId")
        if device.mig is None:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return device.mig.gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, device: Any) -> int:  # noqa: N802
        self._gpu(device, "nvmlDeviceGetComputeInstanceId")
        if device.mig is None:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return device.mig.compute_instance_id

    # ------------------------------------------------------------ events (Xid)

    def nvmlEventSetCreate(self) -> SimEventSet:  # noqa: N802
        self._check_init()
        return SimEventSet()

    def nvmlDeviceGetSupportedEventTypes(self, handle: Any) -> int:  # noqa: N802
        self._whole_gpu(handle, "nvmlDeviceGetSupportedEventTypes")
        return (
            _pynvml.nvmlEventTypeXidCriticalError | _pynvml.nvmlEventTypeSingleBitEccError
            | _pynvml.nvmlEventTypeDoubleBitEccError | _pynvml.nvmlEventTypePState | _pynvml.nvmlEventTypeClock
        )

    def nvmlDeviceRegisterEvents(self, handle: Any, eventTypes: int, eventSet: SimEventSet) -> None:  # noqa: N802, N803
        self._whole_gpu(handle, "nvmlDeviceRegisterEvents")
        if not isinstance(eventSet, SimEventSet) or eventSet.freed:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        with self._lock:
            eventSet.registered.append((handle, int(eventTypes)))

    def nvmlEventSetWait_v2(self, eventSet: SimEventSet, timeoutms: int) -> SimEventData:  # noqa: N802
        """Deliver the next pending Xid of a registered GPU; NVMLError_Timeout after ``timeoutms``."""
        self._check_init()
        if not isinstance(eventSet, SimEventSet) or eventSet.freed:
            raise _error(_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        deadline = time.monotonic() + max(timeoutms, 0) / 1000.0
        with self._events:
            while True:
                for handle, types in eventSet.registered:
                    gpu = handle.gpu
                    if gpu.pending_xids and not gpu.lost and types & _pynvml.nvmlEventTypeXidCriticalError:
                        xid = gpu.pending_xids.pop(0)
                        return SimEventData(device=handle, eventType=_pynvml.nvmlEventTypeXidCriticalError, eventData=xid)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _error(_pynvml.NVML_ERROR_TIMEOUT)
                # the simulator may append to pending_xids without notifying: poll as well
                self._events.wait(min(remaining, 0.01))

    def nvmlEventSetWait(self, eventSet: SimEventSet, timeoutms: int) -> SimEventData:  # noqa: N802
        return self.nvmlEventSetWait_v2(eventSet, timeoutms)

    def nvmlEventSetFree(self, eventSet: SimEventSet) -> None:  # noqa: N802
        self._check_init()
        eventSet.freed = True
        eventSet.registered.clear()


def demo_gpus(count: int = 4, model: str = "NVIDIA H100 80GB HBM3", seed: int = 0) -> list[SimGpu]:
    """A small, busy-looking set of GPUs (``fleetledger collect`` with backend 'simulated', benches)."""
    gpus = []
    for i in range(count):
        uid = f"{seed:08x}-{i:04x}-4000-8000-{(seed * 977 + i):012x}"
        gpus.append(SimGpu(
            uuid=f"GPU-{uid}", index=i, name=model, pci_bus_id=f"00000000:{0x18 + i * 0x10:02X}:00.0",
            memory_total_bytes=80 * 1024**3, power_limit_mw=700_000, sm_util_pct=40 + i, mem_util_pct=20 + i,
            memory_used_bytes=(30 + i) * 1024**3, power_mw=350_000 + i * 1000, energy_mj=1_000_000 * (i + 1),
            sm_clock_mhz=1980, mem_clock_mhz=2619, temperature_c=45 + i,
            processes=[SimProcess(pid=10_000 + i, used_memory_bytes=(30 + i) * 1024**3, sm_util_pct=40 + i)],
        ))
    return gpus
