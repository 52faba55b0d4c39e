"""The NVML sampler on the simulator's NVML-shaped module: every field, NOT_SUPPORTED, lost GPUs,
Xid events, processes with container/pod mapping, MIG devices."""

from __future__ import annotations

from pathlib import Path

import pynvml
import pytest

from collectors.component import MemoryConsumer, TransientError
from collectors.config import NvmlConfig
from collectors.nvml.sampler import NvmlSampler
from collectors.telemetry import Telemetry
from schemas.tables import GPU_EVENTS, GPU_PROCESSES, GPU_SAMPLES
from simulator.nvml import SimGpu, SimMigDevice, SimNVML, SimProcess

UUID0 = "GPU-11111111-2222-3333-4444-555555555555"
UUID1 = "GPU-66666666-7777-8888-9999-000000000000"
POD_UID = "6f1c8a3e-3c1b-4f2a-9d8e-0a1b2c3d4e5f"
CID = "8c2d" * 16
T0_NS = 1_795_000_000_000_000_000  # 2026-11-18, virtual time


def make_gpus() -> list[SimGpu]:
    g0 = SimGpu(
        uuid=UUID0, index=0, name="NVIDIA H100 80GB HBM3", pci_bus_id="00000000:18:00.0",
        memory_total_bytes=85_520_809_984, power_limit_mw=700_000, sm_util_pct=87, mem_util_pct=41,
        memory_used_bytes=70_000_000_000, power_mw=612_345, energy_mj=9_876_543_210, sm_clock_mhz=1980,
        mem_clock_mhz=2619, temperature_c=67, throttle_reasons=0x4, ecc_sbe=3, ecc_dbe=1,
        processes=[SimProcess(pid=4242, used_memory_bytes=69_000_000_000, sm_util_pct=85, name="vllm")],
    )
    g1 = SimGpu(
        uuid=UUID1, index=1, name="NVIDIA H200", pci_bus_id="00000000:2A:00.0",
        memory_total_bytes=150_000_000_000, power_limit_mw=700_000, sm_util_pct=5, mem_util_pct=1,
        memory_used_bytes=1_000_000, power_mw=80_500, energy_mj=1_000, sm_clock_mhz=345, mem_clock_mhz=2619,
        temperature_c=31,
    )
    return [g0, g1]


def write_proc(root: Path, pid: int, cgroup: str, environ: dict[str, str] | None = None, ns: str | None = None) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "cgroup").write_text(cgroup)
    (d / "comm").write_text("python3\n")
    if environ is not None:
        (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in environ.items()) + b"\0")
    if ns is not None:
        sa = d / "root/var/run/secrets/kubernetes.io/serviceaccount"
        sa.mkdir(parents=True)
        (sa / "namespace").write_text(ns)


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    write_proc(
        root, 4242,
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/"
        f"cri-containerd-{CID}.scope\n",
        environ={"PATH": "/usr/bin", "HOSTNAME": "vllm-decode-7d9f-abcde"},
        ns="inference",
    )
    return root


class Clock:
    def __init__(self, start_ns: int) -> None:
        self.ns = start_ns

    def __call__(self) -> int:
        return self.ns


def make_sampler(nvml, proc_root: Path, clock=None, consumer=None, **cfg):
    consumer = consumer if consumer is not None else MemoryConsumer()
    tel = Telemetry()
    cfg.setdefault("proc_root", proc_root)
    cfg.setdefault("flush_interval_s", 0)
    s = NvmlSampler(nvml, consumer, tel, NvmlConfig(**cfg), clock or Clock(T0_NS), cluster="c1", node="node-a")
    return s, consumer, tel


def test_every_field_of_a_pass(proc_root):
    nvml = SimNVML(make_gpus())
    nvml.set_time(T0_NS)
    s, out, tel = make_sampler(nvml, proc_root)
    s.sample_once()
    t = out.table("gpu_samples")
    assert t.schema == GPU_SAMPLES
    rows = sorted(t.to_pylist(), key=lambda r: r["gpu_index"])
    r0 = rows[0]
    assert r0["ts"].timestamp() == T0_NS // 1_000_000 / 1000
    assert (r0["cluster"], r0["node"], r0["gpu_uuid"], r0["gpu_index"], r0["gpu_model"]) == (
        "c1", "node-a", UUID0, 0, "NVIDIA H100 80GB HBM3")
    assert (r0["mig_profile"], r0["mig_instance"], r0["source"]) == ("", "", "nvml")
    assert r0["sm_util_pct"] == 87 and r0["mem_util_pct"] == 41
    assert r0["gr_engine_active"] is None  # NVML has no such field (DCGM does)
    assert r0["memory_used_bytes"] == 70_000_000_000 and r0["memory_total_bytes"] == 85_520_809_984
    assert r0["power_w"] == pytest.approx(612.345)  # mW -> W
    assert r0["energy_mj"] == 9_876_543_210
    assert (r0["sm_clock_mhz"], r0["mem_clock_mhz"], r0["temperature_c"]) == (1980, 2619, 67)
    assert r0["throttle_reasons"] == 0x4
    assert (r0["ecc_sbe_total"], r0["ecc_dbe_total"]) == (3, 1)
    assert rows[1]["gpu_model"] == "NVIDIA H200" and rows[1]["power_w"] == pytest.approx(80.5)
    assert tel.value("samples", component="nvml") == 2

    p = out.table("gpu_processes")
    assert p.schema == GPU_PROCESSES
    (pr,) = p.to_pylist()
    assert (pr["gpu_uuid"], pr["pid"], pr["process_name"], pr["used_memory_bytes"], pr["sm_util_pct"]) == (
        UUID0, 4242, "vllm", 69_000_000_000, 85)
    assert (pr["container_id"], pr["pod"], pr["namespace"]) == (CID, "vllm-decode-7d9f-abcde", "inference")


def test_energy_counter_and_state_follow_the_simulator(proc_root):
    gpus = make_gpus()
    nvml = SimNVML(gpus)
    clock = Clock(T0_NS)
    s, out, _ = make_sampler(nvml, proc_root, clock)
    s.sample_once()
    gpus[0].energy_mj += 612_345  # one virtual second at 612.345 W
    gpus[0].temperature_c = 70
    clock.ns += 1_000_000_000
    s.sample_once()
    rows = [r for r in out.table("gpu_samples").to_pylist() if r["gpu_index"] == 0]
    assert [r["energy_mj"] for r in rows] == [9_876_543_210, 9_876_543_210 + 612_345]
    assert [r["temperature_c"] for r in rows] == [67, 70]
    assert rows[1]["ts"].timestamp() - rows[0]["ts"].timestamp() == pytest.approx(1.0)


def test_not_supported_fields_are_null_and_the_rest_is_read(proc_root):
    gpus = make_gpus()
    gpus[1].unsupported = {"nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetPowerUsage",
                           "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetTemperatureV"}
    s, out, tel = make_sampler(SimNVML(gpus), proc_root)
    s.sample_once()
    r1 = next(r for r in out.table("gpu_samples").to_pylist() if r["gpu_index"] == 1)
    assert r1["ecc_sbe_total"] is None and r1["ecc_dbe_total"] is None
    assert r1["power_w"] is None and r1["energy_mj"] is None
    assert r1["temperature_c"] == 31  # fell back to nvmlDeviceGetTemperature
    assert r1["sm_util_pct"] == 5
    assert tel.value("errors") == 0  # NOT_SUPPORTED is not an error


def test_temperature_falls_back_when_the_module_lacks_temperature_v(proc_root):
    class OldModule(SimNVML):
        def __getattribute__(self, name):
            if name == "nvmlDeviceGetTemperatureV":
                raise AttributeError(name)
            return super().__getattribute__(name)

    s, out, _ = make_sampler(OldModule(make_gpus()), proc_root)
    s.sample_once()
    assert sorted(r["temperature_c"] for r in out.table("gpu_samples").to_pylist()) == [31, 67]


def test_lost_gpu_gives_one_event_and_the_others_go_on(proc_root):
    gpus = make_gpus()
    clock = Clock(T0_NS)
    s, out, tel = make_sampler(SimNVML(gpus), proc_root, clock)
    s.sample_once()
    gpus[0].lost = True
    for _ in range(3):
        clock.ns += 1_000_000_000
        s.sample_once()
    samples = out.table("gpu_samples").to_pylist()
    assert sum(r["gpu_index"] == 1 for r in samples) == 4
    assert sum(r["gpu_index"] == 0 for r in samples) == 1
    events = out.table("gpu_events")
    assert events.schema == GPU_EVENTS
    lost = [e for e in events.to_pylist() if e["event_kind"] == "gpu_lost"]
    assert len(lost) == 1 and lost[0]["gpu_uuid"] == UUID0 and lost[0]["gpu_index"] == 0
    assert tel.value("errors", component="nvml", kind="gpu_lost") == 1
    gpus[0].lost = False
    s.sample_once()
    assert [e["event_kind"] for e in out.table("gpu_events").to_pylist()] == ["gpu_lost", "gpu_recovered"]
    assert sum(r["gpu_index"] == 0 for r in out.table("gpu_samples").to_pylist()) == 2


def test_xid_events_become_gpu_events_rows(proc_root):
    gpus = make_gpus()
    nvml = SimNVML(gpus)
    s, out, tel = make_sampler(nvml, proc_root)
    s.initialise()
    gpus[1].pending_xids.extend([79, 48])
    nvml.inject_xid(UUID0, 13)
    s.sample_once()
    xids = sorted((e["gpu_uuid"], e["gpu_index"], e["xid"]) for e in out.table("gpu_events").to_pylist()
                  if e["event_kind"] == "xid")
    assert xids == [(UUID0, 0, 13), (UUID1, 1, 48), (UUID1, 1, 79)]
    assert tel.value("gpu_events", component="nvml", kind="xid") == 3
    s.sample_once()  # delivered once only
    assert sum(e["event_kind"] == "xid" for e in out.table("gpu_events").to_pylist()) == 3


def test_process_utilisation_not_found_means_no_new_sample(proc_root):
    nvml = SimNVML(make_gpus())
    nvml.set_time(T0_NS)
    s, out, _ = make_sampler(nvml, proc_root)
    s.sample_once()
    s.sample_once()  # the simulated clock did not move: NVML answers NOT_FOUND
    nvml.set_time(T0_NS + 1_000_000_000)
    s.sample_once()
    assert [r["sm_util_pct"] for r in out.table("gpu_processes").to_pylist()] == [85, None, 85]


def test_mig_devices_become_rows_of_their_parent(proc_root):
    gpus = make_gpus()
    gpus[0].mig_mode = 1
    gpus[0].mig_devices = [
        SimMigDevice("MIG-aaaaaaaa-0000-0000-0000-000000000001", "3g.40gb", gpu_instance_id=1,
                     memory_total_bytes=40 << 30, memory_used_bytes=10 << 30),
        SimMigDevice("MIG-aaaaaaaa-0000-0000-0000-000000000002", "1g.10gb", gpu_instance_id=9,
                     memory_total_bytes=10 << 30, memory_used_bytes=1 << 30),
    ]
    s, out, _ = make_sampler(SimNVML(gpus), proc_root)
    s.sample_once()
    mig = sorted((r["gpu_uuid"], r["mig_profile"], r["mig_instance"], r["memory_used_bytes"], r["power_w"])
                 for r in out.table("gpu_samples").to_pylist() if r["mig_profile"])
    assert mig == [(UUID0, "1g.10gb", "9", 1 << 30, None), (UUID0, "3g.40gb", "1", 10 << 30, None)]


def test_a_refusing_consumer_is_counted_not_raised(proc_root):
    class Refusing:
        def consume(self, table, data):
            raise TransientError("disk full")

    s, _, tel = make_sampler(SimNVML(make_gpus()), proc_root, consumer=Refusing())
    s.sample_once()
    assert tel.value("rows_dropped", component="nvml", reason="TransientError") == 3  # 2 samples + 1 process


def test_interval_thread_and_idempotent_shutdown(proc_root):
    nvml = SimNVML(make_gpus())
    s, out, _ = make_sampler(nvml, proc_root, clock=None, interval_s=0.02)
    s.start()
    s.start()
    import time as _t
    deadline = _t.monotonic() + 5
    while out.rows("gpu_samples") < 6 and _t.monotonic() < deadline:
        _t.sleep(0.01)
    s.shutdown(2.0)
    s.shutdown(2.0)
    assert out.rows("gpu_samples") >= 6
    assert nvml._init_count == 0  # nvmlShutdown was called once
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        nvml.nvmlDeviceGetCount()


def test_rows_of_several_passes_are_flushed_together_and_on_shutdown(proc_root):
    clock = Clock(T0_NS)
    s, out, tel = make_sampler(SimNVML(make_gpus()), proc_root, clock, flush_interval_s=5)
    for _ in range(6):  # t = 0..5 s: the pass at t = 5 s flushes
        s.sample_once()
        clock.ns += 1_000_000_000
    assert [t.num_rows for t in out.tables["gpu_samples"]] == [12]
    s.sample_once()
    assert out.rows("gpu_samples") == 12  # held until the next flush ...
    s.shutdown(1)
    assert [t.num_rows for t in out.tables["gpu_samples"]] == [12, 2]  # ... or shutdown
    assert tel.value("samples", component="nvml") == 14
