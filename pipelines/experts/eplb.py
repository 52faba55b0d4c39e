"""Replica plans for MoE experts: the DeepSeek EPLB algorithm, reimplemented in numpy.

``rebalance_experts(weight[L, E], num_replicas, num_groups, num_nodes, num_gpus)`` returns
``(phy2log [L, R], log2phy [L, E, max_replicas], logcnt [L, E])`` exactly as the reference
``eplb.py`` of deepseek-ai/EPLB does (same greedy choices, same tie-breaking: the first
lightest pack, the first heaviest expert), so the README example is reproduced bit for bit.

Policies: *hierarchical* when ``num_groups`` is a multiple of ``num_nodes`` (pack expert groups
onto nodes, replicate hot experts within each node, pack replicas onto the node's GPUs) and
*global* otherwise (one group, one node). Loops run over packing positions and replicas, each
step vectorised across all layers (and nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class EplbInputError(ValueError):
    """Shapes or counts that the EPLB algorithm cannot place; the message says which."""


@dataclass(frozen=True)
class ReplicaPlan:
    phy2log: np.ndarray  # int64 [layers, num_replicas]: logical expert held by each physical slot
    log2phy: np.ndarray  # int64 [layers, experts, max_replicas]: physical slots of each expert, -1 padded
    logcnt: np.ndarray  # int64 [layers, experts]: replica count per logical expert
    policy: str  # 'hierarchical' | 'global'

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "phy2log": self.phy2log.tolist(),
            "log2phy": self.log2phy.tolist(),
            "logcnt": self.logcnt.tolist(),
        }


def balanced_packing(weight: np.ndarray, num_packs: int) -> tuple[np.ndarray, np.ndarray]:
    """Pack ``n`` weighted items per row into ``num_packs`` packs of ``n / num_packs`` items each,
    heaviest first into the currently lightest non-full pack. Returns (pack_index, rank_in_pack)."""
    rows, num_items = weight.shape
    if num_items % num_packs:
        raise EplbInputError(f"{num_items} items cannot be split evenly into {num_packs} packs")
    per_pack = num_items // num_packs
    if per_pack == 1:
        pack_index = np.broadcast_to(np.arange(num_items, dtype=np.int64), weight.shape).copy()
        return pack_index, np.zeros(weight.shape, dtype=np.int64)

    order = np.argsort(-weight, axis=-1, kind="stable")  # heaviest first, ties by index
    pack_index = np.full(weight.shape, -1, dtype=np.int64)
    rank_in_pack = np.full(weight.shape, -1, dtype=np.int64)
    pack_weights = np.zeros((rows, num_packs), dtype=weight.dtype)
    pack_items = np.zeros((rows, num_packs), dtype=np.int64)
    row_ids = np.arange(rows)
    for position in range(num_items):
        item = order[:, position]
        candidates = np.where(pack_items < per_pack, pack_weights, np.inf)
        pack = np.argmin(candidates, axis=-1)  # first lightest among non-full packs
        pack_index[row_ids, item] = pack
        rank_in_pack[row_ids, item] = pack_items[row_ids, pack]
        pack_weights[row_ids, pack] += weight[row_ids, item]
        pack_items[row_ids, pack] += 1
    return pack_index, rank_in_pack


def replicate_experts(weight: np.ndarray, num_phy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add ``num_phy - num_log`` replicas, each to the expert with the highest load per replica.
    Returns (phy2log, rank of each physical slot among its expert's replicas, logcnt)."""
    rows, num_log = weight.shape
    if num_phy < num_log:
        raise EplbInputError(f"{num_phy} physical slots cannot hold {num_log} logical experts")
    phy2log = np.broadcast_to(np.arange(num_phy, dtype=np.int64), (rows, num_phy)).copy()
    rank = np.zeros((rows, num_phy), dtype=np.int64)
    logcnt = np.ones((rows, num_log), dtype=np.int64)
    row_ids = np.arange(rows)
    for slot in range(num_log, num_phy):
        hottest = np.argmax(weight / logcnt.astype(weight.dtype), axis=-1)  # first maximum, as torch.max on CPU
        phy2log[:, slot] = hottest
        rank[:, slot] = logcnt[row_ids, hottest]
        logcnt[row_ids, hottest] += 1
    return phy2log, rank, logcnt


def _inverse(perm: np.ndarray) -> np.ndarray:
    inv = np.empty_like(perm)
    np.put_along_axis(inv, perm, np.broadcast_to(np.arange(perm.shape[1], dtype=np.int64), perm.shape), axis=1)
    return inv


def _rebalance_hierarchical(
    weight: np.ndarray, num_physical: int, num_groups: int, num_nodes: int, num_gpus: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    num_layers, num_logical = weight.shape
    if num_logical % num_groups:
        raise EplbInputError(f"{num_logical} experts cannot be split into {num_groups} groups")
    group_size = num_logical // num_groups
    if num_groups % num_nodes:
        raise EplbInputError(f"{num_groups} groups cannot be split over {num_nodes} nodes")
    groups_per_node = num_groups // num_nodes
    if num_gpus % num_nodes:
        raise EplbInputError(f"{num_gpus} GPUs cannot be split over {num_nodes} nodes")
    if num_physical % num_gpus:
        raise EplbInputError(f"{num_physical} replicas cannot be split evenly over {num_gpus} GPUs")
    phy_per_gpu = num_physical // num_gpus
    log_per_node = num_logical // num_nodes

    # step 1: pack expert groups onto nodes
    tokens_per_group = weight.reshape(num_layers, num_groups, group_size).sum(-1)
    group_pack, group_rank = balanced_packing(tokens_per_group, num_nodes)
    log2mlog = (
        ((group_pack * groups_per_node + group_rank) * group_size)[:, :, None] + np.arange(group_size, dtype=np.int64)
    ).reshape(num_layers, num_logical)
    mlog2log = _inverse(log2mlog)

    # step 2: replicate hot experts within each node  [layers * nodes, experts per node]
    tokens_per_mlog = np.take_along_axis(weight, mlog2log, axis=-1).reshape(-1, log_per_node)
    phy2mlog, phyrank, mlogcnt = replicate_experts(tokens_per_mlog, num_physical // num_nodes)

    # step 3: pack the node's physical experts onto its GPUs
    tokens_per_phy = np.take_along_axis(tokens_per_mlog / mlogcnt.astype(tokens_per_mlog.dtype), phy2mlog, axis=-1)
    pack_index, rank_in_pack = balanced_packing(tokens_per_phy, num_gpus // num_nodes)
    phy2pphy = pack_index * phy_per_gpu + rank_in_pack
    pphy2phy = _inverse(phy2pphy)

    pphy2mlog = np.take_along_axis(phy2mlog, pphy2phy, axis=-1)
    pphy2mlog = (
        pphy2mlog.reshape(num_layers, num_nodes, -1)
        + np.arange(0, num_logical, log_per_node, dtype=np.int64).reshape(1, -1, 1)
    ).reshape(num_layers, -1)
    pphy2log = np.take_along_axis(mlog2log, pphy2mlog, axis=-1)
    pphyrank = np.take_along_axis(phyrank, pphy2phy, axis=-1).reshape(num_layers, -1)
    logcnt = np.take_along_axis(mlogcnt.reshape(num_layers, -1), log2mlog, axis=-1)
    return pphy2log, pphyrank, logcnt


def rebalance_experts(
    weight: np.ndarray | list, num_replicas: int, num_groups: int, num_nodes: int, num_gpus: int
) -> ReplicaPlan:
    """The EPLB replica plan for per-layer expert loads ``weight[L, E]``.

    Hierarchical policy when ``num_groups % num_nodes == 0``, else global. Raises
    EplbInputError naming the constraint that the sizes break.
    """
    w = np.asarray(weight)
    if w.ndim != 2 or w.size == 0:
        raise EplbInputError(f"weight must be a non-empty 2-D array [layers, experts], got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.number) or w.dtype == np.bool_:
        raise EplbInputError(f"weight must hold numbers, got {w.dtype}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise EplbInputError("weight must hold finite, non-negative loads")
    for name, value in (("num_replicas", num_replicas), ("num_groups", num_groups), ("num_nodes", num_nodes), ("num_gpus", num_gpus)):
        if int(value) < 1:
            raise EplbInputError(f"{name} must be at least 1, got {value}")
    w = w.astype(np.float32)  # the reference runs in float32; ties and sums must match it
    num_layers, num_logical = w.shape
    if num_groups % num_nodes == 0:
        policy = "hierarchical"
        phy2log, phyrank, logcnt = _rebalance_hierarchical(w, num_replicas, num_groups, num_nodes, num_gpus)
    else:
        policy = "global"
        phy2log, phyrank, logcnt = _rebalance_hierarchical(w, num_replicas, 1, 1, num_gpus)
    max_cnt = int(logcnt.max())
    log2phy = np.full((num_layers, num_logical * max_cnt), -1, dtype=np.int64)
    np.put_along_axis(
        log2phy,
        phy2log * max_cnt + phyrank,
        np.broadcast_to(np.arange(num_replicas, dtype=np.int64), (num_layers, num_replicas)),
        axis=-1,
    )
    return ReplicaPlan(phy2log, log2phy.reshape(num_layers, num_logical, max_cnt), logcnt, policy)
