"""SimNVML speaks pynvml: the same names, return types, units and exception classes."""

from __future__ import annotations

import threading

import pynvml
import pytest

from simulator.nvml import SimGpu, SimMigDevice, SimNVML, SimProcess, demo_gpus


@pytest.fixture
def nv():
    gpus = demo_gpus(2)
    gpus[0].processes = [SimProcess(pid=11, used_memory_bytes=5 << 30, sm_util_pct=70, name="sglang")]
    m = SimNVML(gpus)
    m.nvmlInit()
    yield m


def test_calls_before_init_raise_uninitialized():
    m = SimNVML(demo_gpus(1))
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        m.nvmlDeviceGetCount()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        m.nvmlShutdown()


def test_return_types_and_units_are_pynvml_s(nv):
    h = nv.nvmlDeviceGetHandleByIndex(0)
    gpu = nv.gpus[0]
    util = nv.nvmlDeviceGetUtilizationRates(h)
    assert isinstance(util, pynvml.c_nvmlUtilization_t) and (util.gpu, util.memory) == (gpu.sm_util_pct, gpu.mem_util_pct)
    mem = nv.nvmlDeviceGetMemoryInfo(h)
    assert isinstance(mem, pynvml.c_nvmlMemory_t)
    assert (mem.total, mem.used, mem.free) == (gpu.memory_total_bytes, gpu.memory_used_bytes,
                                               gpu.memory_total_bytes - gpu.memory_used_bytes)
    assert nv.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2).used == gpu.memory_used_bytes
    assert nv.nvmlDeviceGetPowerUsage(h) == gpu.power_mw  # mW
    assert nv.nvmlDeviceGetTotalEnergyConsumption(h) == gpu.energy_mj  # mJ
    assert nv.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM) == gpu.sm_clock_mhz
    assert nv.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM) == gpu.mem_clock_mhz
    assert nv.nvmlDeviceGetTemperatureV(h, pynvml.NVML_TEMPERATURE_GPU) == gpu.temperature_c
    assert isinstance(nv.nvmlDeviceGetUUID(h), str) and nv.nvmlDeviceGetName(h) == gpu.name
    assert nv.nvmlDeviceGetPciInfo(h).busId == gpu.pci_bus_id  # pynvml decodes char arrays
    (proc,) = nv.nvmlDeviceGetComputeRunningProcesses(h)
    assert (proc.pid, proc.usedGpuMemory) == (11, 5 << 30)
    (sample,) = nv.nvmlDeviceGetProcessUtilization(h, 0)
    assert isinstance(sample, pynvml.c_nvmlProcessUtilizationSample_t) and (sample.pid, sample.smUtil) == (11, 70)
    assert nv.nvmlSystemGetProcessName(11) == "sglang"
    assert nv.NVML_CLOCK_SM == pynvml.NVML_CLOCK_SM and nv.NVMLError_NotSupported is pynvml.NVMLError_NotSupported


def test_unsupported_lost_and_unknown_functions(nv):
    h = nv.nvmlDeviceGetHandleByIndex(1)
    nv.gpus[1].unsupported.add("nvmlDeviceGetTotalEccErrors")
    with pytest.raises(pynvml.NVMLError_NotSupported) as exc:
        nv.nvmlDeviceGetTotalEccErrors(h, pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC)
    assert exc.value.value == pynvml.NVML_ERROR_NOT_SUPPORTED
    nv.gpus[1].lost = True
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetPowerUsage(h)
    with pytest.raises(AttributeError, match="does not implement"):
        nv.nvmlDeviceGetFanSpeed  # noqa: B018
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetHandleByIndex(9)


def test_event_set_delivers_xids_and_times_out(nv):
    es = nv.nvmlEventSetCreate()
    for i in range(2):
        nv.nvmlDeviceRegisterEvents(nv.nvmlDeviceGetHandleByIndex(i), pynvml.nvmlEventTypeXidCriticalError, es)
    with pytest.raises(pynvml.NVMLError_Timeout):
        nv.nvmlEventSetWait_v2(es, 0)
    threading.Timer(0.05, nv.inject_xid, args=(nv.gpus[1].uuid, 94)).start()
    data = nv.nvmlEventSetWait_v2(es, 5000)  # blocks until the Xid arrives
    assert (data.eventType, data.eventData, nv.nvmlDeviceGetUUID(data.device)) == (
        pynvml.nvmlEventTypeXidCriticalError, 94, nv.gpus[1].uuid)
    nv.nvmlEventSetFree(es)


def test_mig_devices():
    gpu = SimGpu(uuid="GPU-a", index=0, name="NVIDIA A100-SXM4-80GB", pci_bus_id="0", memory_total_bytes=80 << 30,
                 power_limit_mw=400_000, mig_mode=1,
                 mig_devices=[SimMigDevice("MIG-1", "3g.40gb", gpu_instance_id=2, memory_used_bytes=1 << 30)])
    nv = SimNVML([gpu])
    nv.nvmlInit()
    h = nv.nvmlDeviceGetHandleByIndex(0)
    assert nv.nvmlDeviceGetMigMode(h) == [1, 1] and nv.nvmlDeviceGetMaxMigDeviceCount(h) == 7
    mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, 0)
    assert nv.nvmlDeviceGetName(mh) == "NVIDIA A100-SXM4-80GB MIG 3g.40gb"
    assert nv.nvmlDeviceGetGpuInstanceId(mh) == 2 and nv.nvmlDeviceGetMemoryInfo(mh).used == 1 << 30
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nv.nvmlDeviceGetUtilizationRates(mh)
    with pytest.raises(pynvml.NVMLError_NotFound):
        nv.nvmlDeviceGetMigDeviceHandleByIndex(h, 1)


def test_advance_accumulates_energy(nv):
    before = nv.gpus[0].energy_mj
    nv.advance(2.0)
    assert nv.gpus[0].energy_mj == before + 2 * nv.gpus[0].power_mw
