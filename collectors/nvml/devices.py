"""MIG devices and running processes of one GPU, read for ``NvmlSampler`` (a mixin: it uses the
sampler's ``nvml`` module, ``_call``, error classes, ``_pid_cache`` and ``proc_root``).

MIG: each enabled MIG device becomes an extra row (profile from the device name, GPU instance id,
its memory). Processes: ``nvmlDeviceGetComputeRunningProcesses`` with their memory, SM
utilisation from ``nvmlDeviceGetProcessUtilization`` (``NOT_FOUND`` = no new samples since the
last pass), and the container/pod of each PID from ``/proc/<pid>/cgroup`` (cached per PID).
"""

from __future__ import annotations

import logging
from typing import Any

from collectors.nvml import cgroups
from collectors.nvml.state import GpuLost, GpuState

log = logging.getLogger(__name__)


class DeviceReaders:
    def _read_mig(self, gpu: GpuState) -> list[tuple[str, str, Any, Any]]:
        nv = self.nvml
        mode = self._call(gpu, "mig", nv.nvmlDeviceGetMigMode, gpu.handle) if hasattr(nv, "nvmlDeviceGetMigMode") else None
        if not mode or mode[0] != nv.NVML_DEVICE_MIG_ENABLE:
            return []
        rows = []
        for i in range(self._call(gpu, "mig_count", nv.nvmlDeviceGetMaxMigDeviceCount, gpu.handle) or 0):
            try:
                mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, i)
            except self._err_notfound:
                continue  # an empty MIG slot
            except self._err_lost:
                raise GpuLost() from None
            except self._err_base as exc:
                self._count_error("mig", exc)
                continue
            name = self._call(gpu, "mig_name", nv.nvmlDeviceGetName, mh) or ""
            profile = name.rsplit(" MIG ", 1)[1] if " MIG " in name else name
            gi = self._call(gpu, "mig_gi", nv.nvmlDeviceGetGpuInstanceId, mh)
            mem = self._call(gpu, "mig_mem", nv.nvmlDeviceGetMemoryInfo, mh)
            rows.append((profile, "" if gi is None else str(gi), mem.used if mem else None, mem.total if mem else None))
        return rows

    def _read_processes(self, gpu: GpuState, seen: set[int]) -> list[tuple[int, Any, Any]]:
        nv = self.nvml
        plist = self._call(gpu, "procs", nv.nvmlDeviceGetComputeRunningProcesses, gpu.handle)
        if not plist:
            return []
        util: dict[int, int] = {}
        if "proc_util" not in gpu.unsupported:
            try:
                for s in nv.nvmlDeviceGetProcessUtilization(gpu.handle, gpu.last_proc_ts):
                    if s.timeStamp >= gpu.last_proc_ts:
                        util[s.pid] = s.smUtil  # samples come oldest first: the latest wins
                        gpu.last_proc_ts = max(gpu.last_proc_ts, s.timeStamp)
            except self._err_notfound:
                pass  # no new samples since last_proc_ts
            except self._err_ns:
                gpu.unsupported.add("proc_util")
            except self._err_lost:
                raise GpuLost() from None
            except self._err_base as exc:
                self._count_error("proc_util", exc)
        rows = []
        for p in plist:
            pid = int(p.pid)
            seen.add(pid)
            if pid not in self._pid_cache:
                self._pid_cache[pid] = (self._process_name(pid), cgroups.identify(self.proc_root, pid))
            rows.append((pid, p.usedGpuMemory, util.get(pid)))
        return rows

    def _process_name(self, pid: int) -> str:
        fn = getattr(self.nvml, "nvmlSystemGetProcessName", None)
        if fn is not None:
            try:
                name = fn(pid)
                if name:
                    return str(name).rsplit("/", 1)[-1]
            except self._err_base:
                pass
        return cgroups.process_name(self.proc_root, pid)
