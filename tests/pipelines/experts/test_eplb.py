"""The numpy EPLB reimplementation against the DeepSeek reference example and its invariants."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.experts.eplb import EplbInputError, balanced_packing, rebalance_experts


def test_reproduces_the_deepseek_readme_example_exactly(fixtures_dir):
    fx = json.loads((fixtures_dir / "deepseek_eplb_readme_example.json").read_text())
    args = fx["input"]
    plan = rebalance_experts(args["weight"], args["num_replicas"], args["num_groups"], args["num_nodes"], args["num_gpus"])
    ref = fx["computed_by_running_eplb_py"]
    assert plan.policy == "hierarchical"
    assert plan.phy2log.tolist() == ref["phy2log"] == fx["output_phy2log_per_readme"]
    assert plan.log2phy.tolist() == ref["log2phy"]
    assert plan.logcnt.tolist() == ref["logcnt"]
    assert list(plan.phy2log.shape) == ref["shapes"]["phy2log"]
    assert list(plan.log2phy.shape) == ref["shapes"]["log2phy"]


def _check_plan(weight, plan, replicas, gpus):
    layers, experts = weight.shape
    assert plan.phy2log.shape == (layers, replicas)
    assert (plan.logcnt >= 1).all() and (plan.logcnt.sum(axis=1) == replicas).all()
    for layer in range(layers):
        # every slot is named once in log2phy, and log2phy agrees with phy2log
        slots = plan.log2phy[layer][plan.log2phy[layer] >= 0]
        assert sorted(slots.tolist()) == list(range(replicas))
        for expert in range(experts):
            mine = plan.log2phy[layer, expert]
            mine = mine[mine >= 0]
            assert len(mine) == plan.logcnt[layer, expert]
            assert (plan.phy2log[layer, mine] == expert).all()


@pytest.mark.parametrize(("groups", "nodes", "policy"), [(8, 2, "hierarchical"), (3, 2, "global"), (1, 1, "hierarchical")])
def test_plans_are_consistent_and_replicate_the_hottest(groups, nodes, policy):
    rng = np.random.default_rng(groups * 10 + nodes)
    layers, experts, replicas, gpus = 4, 24, 32, 8
    weight = rng.integers(1, 100, size=(layers, experts)).astype(float)
    hot = rng.choice(experts, size=(layers,), replace=True)
    weight[np.arange(layers), hot] = 10_000  # one very hot expert per layer
    plan = rebalance_experts(weight, replicas, groups, nodes, gpus)
    assert plan.policy == policy
    _check_plan(weight, plan, replicas, gpus)
    # the hot expert gets the most replicas (global policy may give it all 8 spares)
    assert (plan.logcnt[np.arange(layers), hot] == plan.logcnt.max(axis=1)).all()
    # replicas spread the load: the heaviest GPU carries less than the hot expert alone
    per_slot = weight[np.arange(layers)[:, None], plan.phy2log] / np.take_along_axis(plan.logcnt, plan.phy2log, axis=1)
    per_gpu = per_slot.reshape(layers, gpus, -1).sum(-1)
    assert (per_gpu.max(axis=1) < 10_000).all()
    assert plan.to_dict()["logcnt"] == plan.logcnt.tolist()


def test_balanced_packing_fills_packs_evenly():
    weight = np.array([[9.0, 1, 8, 2, 7, 3]])
    pack, rank = balanced_packing(weight, 3)
    assert sorted(np.bincount(pack[0]).tolist()) == [2, 2, 2]
    sums = np.bincount(pack[0], weights=weight[0])
    assert sums.tolist() == [10.0, 10.0, 10.0]
    assert set(rank[0].tolist()) == {0, 1}


@pytest.mark.parametrize(
    ("weight", "args", "message"),
    [
        ([[1, 2, 3]], (4, 2, 1, 2), "cannot be split into 2 groups"),
        ([[1, 2, 3, 4]], (2, 1, 1, 1), "cannot hold"),
        ([[1, 2, 3, 4]], (6, 2, 2, 4), "split evenly over 4 GPUs"),
        ([[1, -2, 3, 4]], (4, 1, 1, 1), "non-negative"),
        ([1, 2, 3], (4, 1, 1, 1), "2-D"),
        ([[1, 2, 3, 4]], (4, 0, 1, 1), "num_groups must be at least 1"),
    ],
)
def test_impossible_sizes_say_why(weight, args, message):
    with pytest.raises(EplbInputError, match=message):
        rebalance_experts(weight, *args)
