"""Catalogues of what the simulated fleet is made of: GPU models and served LLMs.

GPU entries carry what NVML reports (name, memory, power limit, clocks) plus list prices
($/GPU-hour per pricing model, public cloud list prices of 2025/26, rounded) and which pynvml
calls answer NOT_SUPPORTED on that model in the simulation. Model entries carry the
continuous-batching cost coefficients of one engine step on an H100 (scaled by the GPU's
``speed``) and, for MoE models, the routing shape (layers, experts, top-k).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1 << 30


@dataclass(frozen=True)
class GpuSpec:
    key: str  # short name used in fleet files: "H100", "H200", "A100"
    nvml_name: str  # what nvmlDeviceGetName answers
    memory_total_bytes: int
    power_limit_w: float  # TDP / default power limit
    idle_power_w: float
    max_sm_clock_mhz: int
    idle_sm_clock_mhz: int
    mem_clock_mhz: int
    speed: float  # step throughput relative to an H100 (1.0)
    list_usd_per_gpu_hour: dict[str, float]  # pricing model -> list price
    unsupported: frozenset[str] = frozenset()


GPUS: dict[str, GpuSpec] = {
    "H100": GpuSpec(
        "H100", "NVIDIA H100 80GB HBM3", 80 * GIB, 700.0, 68.0, 1980, 345, 2619, 1.0,
        {"on_demand": 3.93, "reserved": 2.45, "spot": 2.10},
    ),
    "H200": GpuSpec(
        "H200", "NVIDIA H200", 141 * GIB, 700.0, 75.0, 1980, 345, 3201, 1.25,
        {"on_demand": 4.98, "reserved": 3.20, "spot": 2.60},
        frozenset({"nvmlDeviceGetProcessUtilization"}),
    ),
    "A100": GpuSpec(
        "A100", "NVIDIA A100-SXM4-80GB", 80 * GIB, 400.0, 55.0, 1410, 210, 1593, 0.45,
        {"on_demand": 2.75, "reserved": 1.65, "spot": 1.20},
        frozenset({"nvmlDeviceGetTemperatureV", "nvmlDeviceGetCurrentClocksEventReasons"}),
    ),
}

ENERGY_USD_PER_KWH = 0.12


@dataclass(frozen=True)
class MoeSpec:
    layers: int  # num_hidden_layers as the engine reports them
    dense_layers: int  # leading layers without routed experts (their counts stay zero)
    experts: int  # routed (logical) experts per layer
    top_k: int
    redundant_experts: int = 0  # extra physical replicas (EPLB)


@dataclass(frozen=True)
class ModelSpec:
    key: str  # short name used in instance names: "llama3-8b"
    hf_name: str  # what gen_ai.response.model / model_name say
    weights_gib: float  # total weights (split over the instance's GPUs)
    step_base_s: float  # fixed cost of one engine step on H100 at this model's TP
    step_per_prefill_token_s: float
    step_per_decode_seq_s: float
    max_batch: int  # max_num_seqs / max_running_requests
    max_batched_tokens: int  # prefill token budget per step
    saturation_tokens: int  # tokens per step at which the GPU draws full power
    moe: MoeSpec | None = field(default=None)


MODELS: dict[str, ModelSpec] = {
    "llama3-8b": ModelSpec("llama3-8b", "meta-llama/Llama-3.1-8B-Instruct", 16, 0.006, 2.5e-5, 6e-5, 256, 8192, 2048),
    "qwen-32b": ModelSpec("qwen-32b", "Qwen/Qwen2.5-32B-Instruct", 64, 0.011, 5.0e-5, 1.2e-4, 128, 8192, 2048),
    "llama3-70b": ModelSpec("llama3-70b", "meta-llama/Llama-3.3-70B-Instruct", 140, 0.016, 6.0e-5, 1.6e-4, 128, 8192, 2048),
    "llama3-405b": ModelSpec("llama3-405b", "meta-llama/Llama-3.1-405B-Instruct-FP8", 410, 0.030, 9.0e-5, 2.4e-4, 128, 8192,
                             2048),
    "deepseek-v3": ModelSpec(
        "deepseek-v3", "deepseek-ai/DeepSeek-V3", 690, 0.024, 4.0e-5, 1.0e-4, 256, 16384, 4096,
        MoeSpec(layers=61, dense_layers=3, experts=256, top_k=8, redundant_experts=32),
    ),
    "mixtral-8x22b": ModelSpec(
        "mixtral-8x22b", "mistralai/Mixtral-8x22B-Instruct-v0.1", 282, 0.020, 4.5e-5, 1.2e-4, 128, 8192, 2048,
        MoeSpec(layers=56, dense_layers=0, experts=8, top_k=2, redundant_experts=8),
    ),
}


def gpu_spec(key: str) -> GpuSpec:
    try:
        return GPUS[key]
    except KeyError:
        raise ValueError(f"unknown GPU model {key!r}; the catalogue has {', '.join(GPUS)}") from None


def model_spec(key: str) -> ModelSpec:
    try:
        return MODELS[key]
    except KeyError:
        raise ValueError(f"unknown model {key!r}; the catalogue has {', '.join(MODELS)}") from None
