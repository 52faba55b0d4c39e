"""One partition of a window: the sweeps of a group of engine instances.

A ``PartitionTask`` holds plain numpy arrays and ``Step`` functions only (no store, no Polars
frames), so it pickles cheaply to a Dask worker; ``run_partition`` is pure and deterministic,
which is what lets the thread and Dask runners produce identical rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.attribution.rates import GpuEnergy
from pipelines.attribution.steps import Step, covers, step_product, step_sum
from pipelines.attribution.sweep import sweep, sweep_chain

# charge columns of a partition result
PREFILL_GPU_S, DECODE_GPU_S, COST_USD, ENERGY_J, ENERGY_COST_USD = range(5)
N_CHARGES = 5


@dataclass
class InstanceTask:
    engine_instance: str
    rows: np.ndarray  # row numbers of the window's spans
    prefill_a: np.ndarray
    prefill_b: np.ndarray
    decode_a: np.ndarray
    decode_b: np.ndarray
    w_prefill: np.ndarray
    w_decode: np.ndarray
    members: dict[str, Step]  # gpu -> 0/1 membership
    prices: dict[str, Step]  # gpu -> $/s
    energy: dict[str, GpuEnergy]


@dataclass
class PartitionTask:
    key: str  # e.g. 'default/3' (cluster / partition number)
    ws: int
    we: int
    energy_price: Step
    instances: list[InstanceTask] = field(default_factory=list)


@dataclass
class PartitionResult:
    key: str
    rows: np.ndarray
    charges: np.ndarray  # (rows, N_CHARGES)
    energy_source: dict[str, str]  # instance -> 'energy_counter' | 'power_samples' | 'none'
    busy: dict[str, Step]  # instance -> busy step in the window


def instance_channels(task: InstanceTask, energy_price: Step, ws: int, we: int) -> tuple[list[Step], str]:
    """Rate channels of an instance: GPUs owned, $/s, W, $ of energy/s; and its energy source."""
    gpus = step_sum(list(task.members.values()))
    whole = {g for g, m in task.members.items() if covers(m, ws, we)}  # member for all of the window: no mask
    mask = lambda g, step: step if g in whole else step_product(task.members[g], step)  # noqa: E731
    cost = step_sum([mask(g, task.prices[g]) for g in task.members if g in task.prices])
    energy = step_sum([mask(g, task.energy[g].watts) for g in task.members if g in task.energy])
    energy_cost = step_product(energy, energy_price)
    sources = {task.energy[g].source if g in task.energy else "none" for g in task.members}
    if "power_samples" in sources:
        source = "power_samples"
    elif "energy_counter" in sources:
        source = "energy_counter"
    else:
        source = "none"
    return [gpus, cost, energy, energy_cost], source


def run_partition(task: PartitionTask) -> PartitionResult:
    rows, charges, sources, busy = [], [], {}, {}
    for inst in task.instances:
        channels, source = instance_channels(inst, task.energy_price, task.ws, task.we)
        n = inst.rows.size
        if np.array_equal(inst.prefill_b, inst.decode_a):  # decode starts where prefill ends (weights.phases)
            res = sweep_chain(task.ws, task.we, [inst.prefill_a, inst.prefill_b, inst.decode_b],
                              [inst.w_prefill, inst.w_decode], channels)
        else:
            res = sweep(
                task.ws, task.we,
                np.concatenate([inst.prefill_a, inst.decode_a]),
                np.concatenate([inst.prefill_b, inst.decode_b]),
                np.concatenate([inst.w_prefill, inst.w_decode]),
                channels,
            )
        ch = res.charges
        out = np.empty((n, N_CHARGES))
        out[:, PREFILL_GPU_S] = ch[:n, 0]
        out[:, DECODE_GPU_S] = ch[n:, 0]
        out[:, COST_USD] = ch[:n, 1] + ch[n:, 1]
        out[:, ENERGY_J] = ch[:n, 2] + ch[n:, 2]
        out[:, ENERGY_COST_USD] = ch[:n, 3] + ch[n:, 3]
        rows.append(inst.rows)
        charges.append(out)
        sources[inst.engine_instance] = source
        busy[inst.engine_instance] = res.busy
    return PartitionResult(
        key=task.key,
        rows=np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        charges=np.vstack(charges) if charges else np.zeros((0, N_CHARGES)),
        energy_source=sources,
        busy=busy,
    )
