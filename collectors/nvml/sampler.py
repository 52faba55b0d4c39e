"""The NVML sampler: one pass over every GPU per interval -> gpu_samples, gpu_processes, gpu_events.

It takes the NVML module as a parameter (the real ``pynvml`` or the simulator's ``SimNVML``)
and uses only pynvml's names, so the same code runs on a GPU node and in the simulator.

Per GPU and pass: utilisation (gpu/memory %), memory used/total (bytes), power (mW -> W),
total energy (mJ, monotonic), SM and memory clocks (MHz), temperature (``nvmlDeviceGetTemperatureV``,
else ``nvmlDeviceGetTemperature``), clock-event reasons (else the older throttle reasons), volatile
ECC counts; MIG devices as extra rows (``mig_profile`` e.g. '1g.10gb', ``mig_instance`` = the GPU
instance id; memory only, the whole-GPU fields stay on the parent row); running compute
processes with their memory, utilisation (``NOT_FOUND`` = no new samples -> null) and
container/pod (``cgroups.identify``). Xid and ECC events come from an NVML event set drained
each pass.

Failure rules: a ``NOT_SUPPORTED`` field is null (and not asked again for ``reprobe_every``
passes); a lost GPU becomes one ``gpu_events`` row (``gpu_lost``) and the other GPUs go on;
it is probed each pass and a ``gpu_recovered`` row marks its return. Any other error is counted
in telemetry (``errors{component=nvml,kind=...}``), never raised out of the sampling thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from collectors.component import Consumer
from collectors.config import NvmlConfig
from collectors.nvml import cgroups
from collectors.nvml.devices import DeviceReaders
from collectors.nvml.events import NvmlEvents
from collectors.nvml.state import GpuLost, GpuState
from collectors.telemetry import Telemetry
from schemas.tables import GPU_PROCESSES, GPU_SAMPLES

log = logging.getLogger(__name__)

_ALL = "*"


class NvmlSampler(DeviceReaders, NvmlEvents):
    """Component sampling every GPU of one node through an NVML-shaped module."""

    name = "nvml"

    def __init__(
        self,
        nvml: Any,
        consumer: Consumer,
        telemetry: Telemetry,
        config: NvmlConfig | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        *,
        cluster: str = "default",
        node: str = "",
    ) -> None:
        self.nvml = nvml
        self.consumer = consumer
        self.telemetry = telemetry
        self.config = config or NvmlConfig()
        self.now_ns = now_ns
        self.cluster = cluster
        self.node = node
        self.proc_root = Path(self.config.proc_root)
        self.gpus: list[GpuState] = []
        self._initialised = False
        self._event_set: Any = None
        self._passes = 0
        self._pid_cache: dict[int, tuple[str, cgroups.ProcessIdentity]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._samples: dict[str, list] = {f.name: [] for f in GPU_SAMPLES}
        self._procs: dict[str, list] = {f.name: [] for f in GPU_PROCESSES}
        self._last_flush_ms: int | None = None
        E = nvml.NVMLError  # noqa: N806
        self._err_base = E
        self._err_ns = nvml.NVMLError_NotSupported
        self._err_lost = nvml.NVMLError_GpuIsLost
        self._err_notfound = nvml.NVMLError_NotFound
        self._err_timeout = nvml.NVMLError_Timeout
        self._err_fnf = nvml.NVMLError_FunctionNotFound

    # ------------------------------------------------------------------ lifecycle

    def initialise(self) -> None:
        """nvmlInit and GPU discovery (raises the NVML error if the driver cannot be used)."""
        with self._lock:
            if self._initialised:
                return
            self.nvml.nvmlInit()
            self._initialised = True
            count = self.nvml.nvmlDeviceGetCount()
            for i in range(count):
                try:
                    handle = self.nvml.nvmlDeviceGetHandleByIndex(i)
                    uuid = self.nvml.nvmlDeviceGetUUID(handle)
                    model = self.nvml.nvmlDeviceGetName(handle)
                except self._err_base as exc:
                    self._count_error("discovery", exc)
                    self._emit_events([self._event_row(self.now_ns(), f"index-{i}", i, "gpu_lost"
                                       if isinstance(exc, self._err_lost) else "collector_error", None,
                                       f"GPU {i} could not be opened at start ({exc}); it is not sampled")])
                    continue
                self.gpus.append(GpuState(i, handle, uuid, model))
            if self.config.xid_events:
                self._register_events()

    def start(self) -> None:
        if self._thread is not None or self._closed:
            return
        self.initialise()
        self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self.config.interval_s
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.sample_once()
            except Exception as exc:  # the loop never dies
                self._count_error("pass", exc)
                log.exception("NVML sampling pass failed; the next pass runs in %.1fs", interval)
            self._stop.wait(max(0.0, interval - (time.monotonic() - began)))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.flush()
        with self._lock:
            if self._initialised:
                try:
                    if self._event_set is not None:
                        self.nvml.nvmlEventSetFree(self._event_set)
                    self.nvml.nvmlShutdown()
                except Exception:  # shutdown never raises
                    log.debug("NVML shutdown error", exc_info=True)
                self._initialised = False

    # ------------------------------------------------------------------ one pass

    def sample_once(self) -> None:
        """One pass over all GPUs; rows go to the consumer (one table per contract table)."""
        if not self._initialised:
            self.initialise()
        ts_ms = self.now_ns() // 1_000_000
        self._passes += 1
        if self._passes % self.config.reprobe_every == 0:
            for gpu in self.gpus:
                gpu.unsupported.clear()
        samples, procs = self._samples, self._procs
        events: list[dict] = []
        seen_pids: set[int] = set()
        for gpu in self.gpus:
            try:
                if gpu.lost:
                    self._probe_lost(gpu, ts_ms, events)
                    if gpu.lost:
                        continue
                row = self._read_gpu(gpu)
                mig_rows = self._read_mig(gpu)
                proc_rows = self._read_processes(gpu, seen_pids) if self.config.processes else []
            except GpuLost:
                gpu.lost = True
                self.telemetry.add("errors", component="nvml", kind="gpu_lost")
                events.append(self._event_row(ts_ms, gpu.uuid, gpu.index, "gpu_lost", None,
                                              "NVML reports the GPU is lost; its sampling stops until it answers again"))
                continue
            except Exception as exc:  # one bad GPU never stops the others
                kind = self._count_error("gpu", exc)
                if kind not in gpu.errors_seen:
                    gpu.errors_seen.add(kind)
                    events.append(self._event_row(ts_ms, gpu.uuid, gpu.index, "collector_error", None,
                                                  f"sampling failed: {type(exc).__name__}: {exc}"))
                continue
            self._append_sample(samples, ts_ms, gpu, row, "", "")
            for profile, instance, used, total in mig_rows:
                self._append_sample(samples, ts_ms, gpu, {"memory_used_bytes": used, "memory_total_bytes": total},
                                    profile, instance)
            for pid, used, sm in proc_rows:
                name, ident = self._pid_cache[pid]
                for col, val in (("ts", ts_ms), ("cluster", self.cluster), ("node", self.node),
                                 ("gpu_uuid", gpu.uuid), ("pid", pid), ("process_name", name),
                                 ("container_id", ident.container_id), ("pod", ident.pod),
                                 ("namespace", ident.namespace), ("container", ident.container),
                                 ("used_memory_bytes", used), ("sm_util_pct", sm), ("source", "nvml")):
                    procs[col].append(val)
        for pid in [p for p in self._pid_cache if p not in seen_pids]:
            del self._pid_cache[pid]
        if self._event_set is not None:
            self._drain_events(ts_ms, events)
        if events:
            self._emit_events(events)  # rare and important: never held back
        if self._last_flush_ms is None:
            self._last_flush_ms = ts_ms
        if ts_ms - self._last_flush_ms >= self.config.flush_interval_s * 1000:
            self.flush()

    def flush(self) -> None:
        """Hand the rows of the passes since the last flush to the consumer."""
        samples, procs = self._samples, self._procs
        self._samples = {f.name: [] for f in GPU_SAMPLES}
        self._procs = {f.name: [] for f in GPU_PROCESSES}
        self._last_flush_ms = None
        n = len(samples["ts"])
        if n:
            self._emit("gpu_samples", _table(samples, GPU_SAMPLES))
            self.telemetry.add("samples", n, component="nvml")
        if procs["ts"]:
            self._emit("gpu_processes", _table(procs, GPU_PROCESSES))

    def _append_sample(self, cols: dict[str, list], ts_ms: int, gpu: GpuState, row: dict, profile: str, inst: str) -> None:
        cols["ts"].append(ts_ms)
        cols["cluster"].append(self.cluster)
        cols["node"].append(self.node)
        cols["gpu_uuid"].append(gpu.uuid)
        cols["gpu_index"].append(gpu.index)
        cols["gpu_model"].append(gpu.model)
        cols["mig_profile"].append(profile)
        cols["mig_instance"].append(inst)
        cols["source"].append("nvml")
        for name in _SAMPLE_FIELDS:
            cols[name].append(row.get(name))

    # ------------------------------------------------------------------ reading one GPU

    def _call(self, gpu: GpuState, key: str, fn: Callable, *args: Any) -> Any:
        """One NVML call: value, or None when NOT_SUPPORTED (remembered) or failing otherwise."""
        if key in gpu.unsupported:
            return None
        try:
            return fn(*args)
        except self._err_ns:
            gpu.unsupported.add(key)
            return None
        except self._err_lost:
            raise GpuLost() from None
        except self._err_base as exc:
            self._count_error(key, exc)
            return None

    def _read_gpu(self, gpu: GpuState) -> dict:
        nv, h, c = self.nvml, gpu.handle, self._call
        util = c(gpu, "util", nv.nvmlDeviceGetUtilizationRates, h)
        mem = c(gpu, "mem", nv.nvmlDeviceGetMemoryInfo, h)
        power_mw = c(gpu, "power", nv.nvmlDeviceGetPowerUsage, h)
        return {
            "sm_util_pct": util.gpu if util is not None else None,
            "mem_util_pct": util.memory if util is not None else None,
            "memory_used_bytes": mem.used if mem is not None else None,
            "memory_total_bytes": mem.total if mem is not None else None,
            "power_w": power_mw / 1000.0 if power_mw is not None else None,
            "energy_mj": c(gpu, "energy", nv.nvmlDeviceGetTotalEnergyConsumption, h),
            "sm_clock_mhz": c(gpu, "sm_clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": c(gpu, "mem_clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
            "temperature_c": self._temperature(gpu),
            "throttle_reasons": self._fallback(gpu, "throttle", ("nvmlDeviceGetCurrentClocksEventReasons",
                                               "nvmlDeviceGetCurrentClocksThrottleReasons"), h),
            "ecc_sbe_total": c(gpu, "ecc_sbe", nv.nvmlDeviceGetTotalEccErrors, h,
                               nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, nv.NVML_VOLATILE_ECC),
            "ecc_dbe_total": c(gpu, "ecc_dbe", nv.nvmlDeviceGetTotalEccErrors, h,
                               nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC),
        }

    def _temperature(self, gpu: GpuState) -> Any:
        nv = self.nvml
        if "tempV" not in gpu.unsupported:
            fn = getattr(nv, "nvmlDeviceGetTemperatureV", None)
            if fn is not None:
                try:
                    return fn(gpu.handle, nv.NVML_TEMPERATURE_GPU)
                except (self._err_ns, self._err_fnf):
                    pass  # an older driver: try the older call
                except self._err_lost:
                    raise GpuLost() from None
                except self._err_base as exc:
                    self._count_error("temperature", exc)
                    return None
            gpu.unsupported.add("tempV")
        fn = getattr(nv, "nvmlDeviceGetTemperature", None)
        return self._call(gpu, "temp", fn, gpu.handle, nv.NVML_TEMPERATURE_GPU) if fn else None

    def _fallback(self, gpu: GpuState, key: str, names: tuple[str, ...], *args: Any) -> Any:
        """The first of ``names`` that the module and driver support."""
        for name in names:
            sub = f"{key}:{name}"
            if sub in gpu.unsupported:
                continue
            fn = getattr(self.nvml, name, None)
            if fn is None:
                gpu.unsupported.add(sub)
                continue
            try:
                return fn(*args)
            except (self._err_ns, self._err_fnf):
                gpu.unsupported.add(sub)
            except self._err_lost:
                raise GpuLost() from None
            except self._err_base as exc:
                self._count_error(key, exc)
                return None
        return None

    # ------------------------------------------------------------------ plumbing

    def _emit(self, table: str, data: pa.Table) -> None:
        try:
            self.consumer.consume(table, data)
        except Exception as exc:  # the spool refused: count the loss, keep sampling
            self.telemetry.add("rows_dropped", data.num_rows, component="nvml", reason=type(exc).__name__)
            self._count_error("consume", exc)
            log.warning("NVML rows for %s not accepted (%s); %d rows dropped, sampling goes on", table, exc, data.num_rows)

    def _count_error(self, where: str, exc: BaseException) -> str:
        kind = type(exc).__name__
        self.telemetry.add("errors", component="nvml", kind=kind, where=where)
        return kind


_SAMPLE_FIELDS = (
    "sm_util_pct", "gr_engine_active", "mem_util_pct", "memory_used_bytes", "memory_total_bytes", "power_w",
    "energy_mj", "sm_clock_mhz", "mem_clock_mhz", "temperature_c", "throttle_reasons", "ecc_sbe_total",
    "ecc_dbe_total",
)


def _table(columns: dict[str, list], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)
