"""GPU telemetry of the simulated fleet, stepped in virtual time into ``simulator.nvml.SimGpu``.

``FleetTelemetry(run)`` owns one ``SimGpu`` per GPU of the fleet (or of one node) and
``advance_to(t)`` sets their live state for virtual second ``t`` (seconds from the window
start), consistent with the batching run: utilisation = busy fraction of the last second, power =
energy drawn in the last second, the NVML energy counter (mJ, monotonic, from a per-GPU base
as if the driver had been loaded earlier), memory (vLLM/SGLang reserve ~90 % of memory), clocks
(idle clock when nothing ran), temperature (first-order lag towards a power-dependent target),
clock-event reasons (idle, software power cap), and the faults of the fleet file at their times:
Xid events, ECC errors, a GPU lost (every NVML call then raises ``NVMLError_GpuIsLost``). NVML
calls listed as unsupported for a GPU model in the catalogue raise ``NVMLError_NotSupported``.

Requests and spans are generated separately (``simulator.fleetrun``); telemetry only reads the
run's per-GPU curves, so a demo can step telemetry at its own pace and sample NVML itself.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from simulator.fleetrun import FleetRun
from simulator.nvml import SimGpu, SimNVML, SimProcess

CLOCK_EVENT_GPU_IDLE = 0x1
CLOCK_EVENT_SW_POWER_CAP = 0x4
TEMP_TAU_S = 60.0


def _h(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


class FleetTelemetry:
    """Virtual-time driver of the fleet's ``SimGpu`` objects (optionally of one node only)."""

    def __init__(self, run: FleetRun, node: str | None = None) -> None:
        self.run = run
        fleet = run.fleet
        self.fleet_gpus = [g for g in fleet.gpus if node is None or g.node == node]
        if not self.fleet_gpus:
            raise ValueError(f"node {node!r} is not in the fleet ({', '.join(n.name for n in fleet.nodes)})")
        self.gpus: list[SimGpu] = []
        self._pids: list[int | None] = []
        for g in self.fleet_gpus:
            spec = g.spec
            inst = run.instance_of_gpu(g.uuid)
            self.gpus.append(SimGpu(
                uuid=g.uuid, index=g.index, name=spec.nvml_name, pci_bus_id=g.pci_bus_id,
                memory_total_bytes=spec.memory_total_bytes, power_limit_mw=int(spec.power_limit_w * 1000),
                mem_clock_mhz=spec.mem_clock_mhz, sm_clock_mhz=spec.idle_sm_clock_mhz,
                temperature_c=int(28 + 4 * _h(g.uuid + "t")), unsupported=set(spec.unsupported),
            ))
            if inst is None:
                self._pids.append(None)
            else:
                e = fleet.engines[inst]
                self._pids.append(int(e.process_id) if e.process_id else 2000 + 31 * inst)
        self.nvml_by_node: dict[str, SimNVML] = {}
        for name in dict.fromkeys(g.node for g in self.fleet_gpus):
            self.nvml_by_node[name] = SimNVML([g for g, fg in zip(self.gpus, self.fleet_gpus, strict=True)
                                               if fg.node == name])
        self._energy_base_mj = np.array([int(1e9 + 4e9 * _h(g.uuid + "e")) for g in self.fleet_gpus], dtype=np.int64)
        self._temp = np.array([float(g.temperature_c) for g in self.gpus])
        self._faults = sorted(
            (f.at * fleet.duration_s, k, f) for k, f in enumerate(fleet.faults)
            if any(g.node == f.node and g.index == f.gpu_index for g in self.fleet_gpus))
        self._next_fault = 0
        self.t = 0.0
        self.faults_applied: list[tuple[float, str, str]] = []  # (t, kind, gpu uuid)
        self.advance_to(0.0)

    @property
    def nvml(self) -> SimNVML:
        """The NVML-shaped module of the node (telemetry built with ``node=...``, or a 1-node fleet)."""
        if len(self.nvml_by_node) != 1:
            raise ValueError("this telemetry spans several nodes: use nvml_by_node[node]")
        return next(iter(self.nvml_by_node.values()))

    @property
    def start_ns(self) -> int:
        return int(self.run.fleet.start.timestamp()) * 1_000_000_000

    def now_ns(self) -> int:
        """The virtual clock (for the NVML sampler's ``now_ns``)."""
        return self.start_ns + int(round(self.t * 1e9))

    def state_at(self, t: float) -> dict[str, np.ndarray]:
        """Per-GPU values describing the second before ``t`` (arrays in ``self.gpus`` order)."""
        a = max(0.0, t - 1.0)
        dt = max(t - a, 1e-9)
        busy = np.empty(len(self.gpus))
        energy_j = np.empty(len(self.gpus))
        power_w = np.empty(len(self.gpus))
        for k, g in enumerate(self.fleet_gpus):
            c = self.run.curves[g.uuid]
            e0, e1 = c.energy_at(np.array([a, t]))
            b0, b1 = c.busy_at(np.array([a, t]))
            busy[k] = (b1 - b0) / dt if t > a else 0.0
            energy_j[k] = e1
            power_w[k] = (e1 - e0) / dt if t > a else c.idle_w
        return {"busy": busy, "energy_j": energy_j, "power_w": power_w}

    def advance_to(self, t: float) -> None:
        """Set every GPU's live state for virtual time ``t`` and fire the faults due by then."""
        if t < self.t - 1e-9:
            raise ValueError(f"virtual time only moves forward (at {self.t:.3f} s, asked for {t:.3f} s)")
        dt = t - self.t
        self.t = t
        s = self.state_at(t)
        limit_w = np.array([g.power_limit_mw / 1000 for g in self.gpus])
        target = 30.0 + 50.0 * s["power_w"] / limit_w
        self._temp = target + (self._temp - target) * math.exp(-dt / TEMP_TAU_S)
        energy_mj = self._energy_base_mj + np.floor(s["energy_j"] * 1000.0).astype(np.int64)
        for k, (g, fg) in enumerate(zip(self.gpus, self.fleet_gpus, strict=True)):
            if g.lost:
                continue
            spec = fg.spec
            util = int(round(100 * min(1.0, s["busy"][k])))
            g.sm_util_pct = util
            g.mem_util_pct = int(round(util * 0.55))
            g.power_mw = int(round(s["power_w"][k] * 1000))
            g.energy_mj = int(energy_mj[k])
            g.sm_clock_mhz = spec.max_sm_clock_mhz if util else spec.idle_sm_clock_mhz
            g.temperature_c = int(round(self._temp[k]))
            reasons = CLOCK_EVENT_GPU_IDLE if util == 0 else 0
            if s["power_w"][k] > 0.9 * spec.power_limit_w:
                reasons |= CLOCK_EVENT_SW_POWER_CAP
            g.throttle_reasons = reasons
            pid = self._pids[k]
            if pid is None:
                g.memory_used_bytes = 512 * 1024 * 1024
                g.processes = []
            else:
                g.memory_used_bytes = int(0.9 * g.memory_total_bytes)
                g.processes = [SimProcess(pid=pid, used_memory_bytes=g.memory_used_bytes - 600 * 1024 * 1024,
                                          sm_util_pct=util, mem_util_pct=g.mem_util_pct)]
        for nvml in self.nvml_by_node.values():
            nvml.set_time(self.now_ns())
        self._fire_faults(t)

    def _fire_faults(self, t: float) -> None:
        while self._next_fault < len(self._faults) and self._faults[self._next_fault][0] <= t:
            at, _, f = self._faults[self._next_fault]
            self._next_fault += 1
            gpu = next(g for g, fg in zip(self.gpus, self.fleet_gpus, strict=True)
                       if fg.node == f.node and fg.index == f.gpu_index)
            nvml = self.nvml_by_node[f.node]
            if f.kind == "xid":
                nvml.inject_xid(gpu.uuid, f.xid)
            elif f.kind == "lost":
                nvml.inject_xid(gpu.uuid, 79)  # "GPU has fallen off the bus" precedes the loss
                gpu.lost = True
            elif f.kind == "ecc_sbe":
                gpu.ecc_sbe += f.count
            elif f.kind == "ecc_dbe":
                gpu.ecc_dbe += f.count
                nvml.inject_xid(gpu.uuid, 48)  # double-bit ECC error
            else:
                raise ValueError(f"fault kind {f.kind!r}: expected xid, lost, ecc_sbe or ecc_dbe")
            self.faults_applied.append((at, f.kind, gpu.uuid))

    def run_seconds(self, until: float | None = None, step_s: float = 1.0):
        """Iterate virtual seconds up to ``until`` (default: the window end), yielding ``t``."""
        end = self.run.fleet.duration_s if until is None else until
        t = math.floor(self.t / step_s) * step_s + step_s
        while t <= end + 1e-9:
            self.advance_to(t)
            yield t
            t += step_s
