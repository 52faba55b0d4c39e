"""Telemetry through the NVML-shaped module: monotonic energy, load-consistent power, faults."""

from __future__ import annotations

import pynvml
import pytest

from simulator.api import simulate
from simulator.fleet import Fault, load_fleet


@pytest.fixture(scope="module")
def faulty():
    fleet = load_fleet(nodes=3, hours=0.1, seed=2)
    fleet.faults.append(Fault("lost", "node-a", 7, 0.5))  # the GPU no engine uses
    fleet.faults.append(Fault("xid", "node-c", 1, 0.2, xid=13))
    return simulate(fleet=fleet)


def test_energy_counters_never_decrease_and_power_follows_load(faulty):
    tel = faulty.telemetry("node-a")
    nv = tel.nvml
    nv.nvmlInit()
    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
    last = [nv.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]
    busy_power, idle_power, rises = [], [], 0
    for t in tel.run_seconds(until=150):
        for k, h in enumerate(handles[:7]):  # GPU 7 is lost at 180 s
            e = nv.nvmlDeviceGetTotalEnergyConsumption(h)
            assert e >= last[k]
            rises += e > last[k]
            # the counter delta over the last second equals the reported power (mJ vs mW)
            assert abs((e - last[k]) - nv.nvmlDeviceGetPowerUsage(h)) <= 2
            last[k] = e
            util = nv.nvmlDeviceGetUtilizationRates(h).gpu
            (busy_power if util >= 90 else idle_power if util == 0 else []).append(nv.nvmlDeviceGetPowerUsage(h))
        assert tel.now_ns() == tel.start_ns + int(t * 1e9)
    assert rises > 0 and busy_power
    idle_w = nv.nvmlDeviceGetPowerUsage(handles[7]) / 1000
    assert 50 < idle_w < 80 and nv.nvmlDeviceGetUtilizationRates(handles[7]).gpu == 0
    assert min(busy_power) / 1000 > idle_w * 1.5
    with pytest.raises(ValueError, match="forward"):
        tel.advance_to(10.0)


def test_lost_gpu_raises_gpu_is_lost_and_unsupported_fields_raise_not_supported(faulty):
    tel = faulty.telemetry()  # all nodes
    a, c = tel.nvml_by_node["node-a"], tel.nvml_by_node["node-c"]
    a.nvmlInit()
    c.nvmlInit()
    h7 = a.nvmlDeviceGetHandleByIndex(7)
    assert a.nvmlDeviceGetPowerUsage(h7) > 0
    tel.advance_to(0.6 * faulty.fleet.duration_s)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        a.nvmlDeviceGetTotalEnergyConsumption(h7)
    assert a.nvmlDeviceGetPowerUsage(a.nvmlDeviceGetHandleByIndex(6)) > 0  # the others keep answering
    a100 = c.nvmlDeviceGetHandleByIndex(0)
    assert c.nvmlDeviceGetName(a100) == "NVIDIA A100-SXM4-80GB"
    with pytest.raises(pynvml.NVMLError_NotSupported) as exc:
        c.nvmlDeviceGetTemperatureV(a100, pynvml.NVML_TEMPERATURE_GPU)
    assert exc.value.value == pynvml.NVML_ERROR_NOT_SUPPORTED
    assert c.nvmlDeviceGetTotalEnergyConsumption(a100) > 0
    # the Xid fired at 20 % of the window is delivered by the NVML event API
    es = c.nvmlEventSetCreate()
    c.nvmlDeviceRegisterEvents(c.nvmlDeviceGetHandleByIndex(1), pynvml.nvmlEventTypeXidCriticalError, es)
    ev = c.nvmlEventSetWait_v2(es, 100)
    assert ev.eventData == 13
    assert [k for _, k, _ in tel.faults_applied] == ["xid", "xid", "ecc_sbe", "lost", "xid"]
