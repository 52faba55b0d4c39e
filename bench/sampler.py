"""NVML sampler CPU cost per GPU per sample on the simulated module, against a baseline loop that
calls the same NVML functions without building rows; on a real GPU (when pynvml initialises) the
sampler runs for a while and reports the fields the GPU supports.

Prints one JSON object per line: {"bench", "metric", "value", "unit", "baseline", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import json
import time

from collectors.component import MemoryConsumer
from collectors.config import NvmlConfig
from collectors.nvml.sampler import NvmlSampler
from collectors.telemetry import Telemetry
from simulator.nvml import SimNVML, demo_gpus

TARGET_US = 200.0


class _Discard:
    def consume(self, table, data):
        pass


def baseline_pass(nv, handles) -> None:
    """The NVML calls one pass makes, results thrown away: the floor any sampler pays."""
    for h in handles:
        nv.nvmlDeviceGetUtilizationRates(h)
        nv.nvmlDeviceGetMemoryInfo(h)
        nv.nvmlDeviceGetPowerUsage(h)
        nv.nvmlDeviceGetTotalEnergyConsumption(h)
        nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)
        nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)
        nv.nvmlDeviceGetTemperatureV(h, nv.NVML_TEMPERATURE_GPU)
        nv.nvmlDeviceGetCurrentClocksEventReasons(h)
        nv.nvmlDeviceGetTotalEccErrors(h, nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, nv.NVML_VOLATILE_ECC)
        nv.nvmlDeviceGetTotalEccErrors(h, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC)
        nv.nvmlDeviceGetMigMode(h)
        nv.nvmlDeviceGetComputeRunningProcesses(h)
        try:
            nv.nvmlDeviceGetProcessUtilization(h, 0)
        except nv.NVMLError_NotFound:
            pass


def cpu_per_gpu_sample_us(fn, passes: int, gpus: int) -> float:
    for _ in range(max(10, passes // 10)):  # warm up (lazy imports, first flushes)
        fn()
    t0 = time.process_time()
    for _ in range(passes):
        fn()
    return (time.process_time() - t0) / (passes * gpus) * 1e6


def bench_simulated(gpus: int, passes: int, processes: bool) -> dict:
    nv = SimNVML(demo_gpus(gpus))
    clock = [1_795_000_000_000_000_000]

    def now_ns() -> int:
        clock[0] += 1_000_000_000
        nv.set_time(clock[0])
        return clock[0]

    sampler = NvmlSampler(nv, _Discard(), Telemetry(), NvmlConfig(processes=processes, proc_root="/nonexistent"),
                          now_ns, cluster="bench", node="node-a")
    sampler.initialise()
    handles = [g.handle for g in sampler.gpus]
    value = cpu_per_gpu_sample_us(sampler.sample_once, passes, gpus)
    base = cpu_per_gpu_sample_us(lambda: baseline_pass(nv, handles), passes, gpus)
    sampler.shutdown(1)
    return {"bench": "sampler", "metric": "cpu_us_per_gpu_sample", "value": round(value, 2), "unit": "us",
            "baseline": round(base, 2), "ratio": round(value / base, 2), "baseline_kind": "plain NVML call loop",
            "backend": "simulated", "gpus": gpus, "passes": passes, "processes": processes,
            "target_us": TARGET_US, "meets_target": value < TARGET_US}


def bench_real(seconds: float) -> dict:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return {"bench": "sampler", "metric": "real_gpu", "value": None, "unit": "", "baseline": None, "ratio": None,
                "skipped": True, "reason": f"no real NVML here ({exc}); the real-GPU run was skipped"}
    out = MemoryConsumer()
    sampler = NvmlSampler(pynvml, out, Telemetry(), NvmlConfig(), cluster="bench", node="real")
    sampler.initialise()
    gpus = len(sampler.gpus)
    deadline = time.monotonic() + seconds
    passes = 0
    cpu = 0.0
    while time.monotonic() < deadline:
        t0 = time.process_time()
        sampler.sample_once()
        cpu += time.process_time() - t0
        passes += 1
        time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
    handles = [g.handle for g in sampler.gpus]
    base = cpu_per_gpu_sample_us(lambda: _real_baseline(pynvml, handles), 20, max(gpus, 1))
    samples = out.table("gpu_samples")
    supported = sorted(c for c in samples.column_names if samples.column(c).null_count < samples.num_rows) if samples else []
    value = cpu / max(passes * max(gpus, 1), 1) * 1e6
    sampler.shutdown(1)
    return {"bench": "sampler", "metric": "cpu_us_per_gpu_sample", "value": round(value, 2), "unit": "us",
            "baseline": round(base, 2), "ratio": round(value / base, 2) if base else None, "backend": "pynvml",
            "gpus": gpus, "passes": passes, "gpu_models": sorted({g.model for g in sampler.gpus}),
            "fields_supported": supported, "process_rows": out.rows("gpu_processes")}


def _real_baseline(nv, handles):
    for h in handles:
        for fn, args in ((nv.nvmlDeviceGetUtilizationRates, ()), (nv.nvmlDeviceGetMemoryInfo, ()),
                         (nv.nvmlDeviceGetPowerUsage, ()), (nv.nvmlDeviceGetTotalEnergyConsumption, ()),
                         (nv.nvmlDeviceGetClockInfo, (nv.NVML_CLOCK_SM,)), (nv.nvmlDeviceGetClockInfo, (nv.NVML_CLOCK_MEM,)),
                         (nv.nvmlDeviceGetTemperatureV, (nv.NVML_TEMPERATURE_GPU,)),
                         (nv.nvmlDeviceGetCurrentClocksEventReasons, ()), (nv.nvmlDeviceGetComputeRunningProcesses, ())):
            try:
                fn(h, *args)
            except nv.NVMLError:
                pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, seconds")
    ap.add_argument("--real-seconds", type=float, default=None, help="run time on a real GPU (default 60, quick 5)")
    args = ap.parse_args(argv)
    passes = 300 if args.quick else 3000
    for gpus in (1, 8):
        print(json.dumps(bench_simulated(gpus, passes, processes=True)), flush=True)
    print(json.dumps(bench_simulated(8, passes, processes=False)), flush=True)
    real_s = args.real_seconds if args.real_seconds is not None else (5.0 if args.quick else 60.0)
    print(json.dumps(bench_real(real_s)), flush=True)


if __name__ == "__main__":
    main()
