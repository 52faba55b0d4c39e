"""Fleet description: the default demo fleet, reservations coverage, the concrete fleet.toml."""

from __future__ import annotations

import pytest

from fleetledger.settings import load_settings
from simulator.fleet import FleetError, Reservation, fleet_to_toml, load_fleet


def test_default_fleet_is_16_gpus_two_nodes_with_dense_vllm_and_sglang_moe():
    f = load_fleet()
    assert [n.name for n in f.nodes] == ["node-a", "node-b"]
    assert [len(n.gpus) for n in f.nodes] == [8, 8]
    assert {g.spec.nvml_name for g in f.nodes[0].gpus} == {"NVIDIA H100 80GB HBM3"}
    assert {g.spec.nvml_name for g in f.nodes[1].gpus} == {"NVIDIA H200"}
    vllm = [e for e in f.engines if e.engine_kind == "vllm"]
    assert sorted(e.tp for e in vllm) == [1, 2, 4]
    assert all(e.spec.moe is None for e in vllm)
    (moe,) = [e for e in f.engines if e.engine_kind == "sglang"]
    assert moe.instance == "sglang-deepseek-v3-0" and moe.ep == 8 and len(moe.gpu_uuids) == 8
    assert (moe.spec.moe.layers, moe.spec.moe.experts, moe.spec.moe.top_k) == (61, 256, 8)
    used = {u for e in f.engines for u in e.gpu_uuids}
    idle = [g for g in f.gpus if g.uuid not in used]
    assert idle and all(g.node == "node-a" for g in idle)
    assert {w.name for w in f.workflows} == {"chat", "rag", "agent", "batch-eval"}
    assert {r.pricing_model for r in f.reservations} == {"reserved", "on_demand", "spot"}


def test_every_gpu_has_exactly_one_reservation_at_any_time():
    f = load_fleet(hours=2)
    for g in f.gpus:
        segs = f.rate_segments(g.uuid)
        assert segs[0][0] == 0 and segs[-1][1] == f.duration_s
        assert all(a[1] == b[0] for a, b in zip(segs, segs[1:], strict=False))
    # a GPU under two reservations at once is refused with a message naming it
    r = f.reservations[0]
    f.reservations.append(Reservation(**{**r.__dict__, "reservation_id": "dup"}))
    with pytest.raises(FleetError, match="gap or overlap"):
        f.validate()


def test_nodes_scale_the_fleet_and_bring_a100_and_tp8():
    f = load_fleet(nodes=5)
    assert len(f.gpus) == 40 and [n.name for n in f.nodes][-1] == "node-e"
    assert any(g.spec.key == "A100" for g in f.gpus)
    tp8 = {e.model for e in f.engines if e.tp == 8}
    assert {"mixtral-8x22b", "llama3-405b"} <= tp8  # TP 8: an MoE instance and a dense one
    names = [e.instance for e in f.engines]
    assert len(names) == len(set(names)) and "vllm-llama3-8b-1" in names  # node-e repeats node-a's layout


def test_concrete_fleet_toml_round_trips_and_is_a_valid_sidecar_config(tmp_path):
    from collectors.engines import EngineConfig

    f = load_fleet(nodes=3, hours=0.5, seed=5)
    path = tmp_path / "fleet.toml"
    path.write_text(fleet_to_toml(f))
    assert load_fleet(path) == f
    settings = load_settings(path)
    assert settings.collect.cluster == "default"
    import tomllib

    engines = [EngineConfig(**e) for e in tomllib.loads(path.read_text())["collect"]["engines"]]
    assert [e.instance for e in engines] == [e.instance for e in f.engines]
    assert engines[0].gpu_uuids == f.engines[0].gpu_uuids


def test_bad_fleet_input_says_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[fleet\n")
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(bad)
    with pytest.raises(FleetError, match="at least one node"):
        load_fleet(nodes=0)
