"""`fleetledger experts` (from the store) and `fleetledger experts rebalance` through the real CLI app."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from fleetledger.cli.experts_cmd import parse_since
from fleetledger.cli.main import app
from schemas import Store
from schemas.tables import TABLES
from tests.schemas.rows import sample_table

runner = CliRunner()
T0 = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def _rows(table: str, n: int, **columns) -> pa.Table:
    t = sample_table(TABLES[table], n)
    for name, value in columns.items():
        values = value if isinstance(value, list) else [value] * n
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, type=t.schema.field(name).type))
    return t


def test_rebalance_prints_the_fixture_plan(tmp_path, fixtures_dir):
    fx = json.loads((fixtures_dir / "deepseek_eplb_readme_example.json").read_text())
    loads = tmp_path / "loads.json"
    loads.write_text(json.dumps({"weight": fx["input"]["weight"]}))
    out = runner.invoke(app, ["experts", "rebalance", "--loads", str(loads), "--replicas", "16", "--groups", "4",
                              "--nodes", "2", "--gpus", "8"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    plan = json.loads(out.stdout)
    ref = fx["computed_by_running_eplb_py"]
    assert (plan["phy2log"], plan["log2phy"], plan["logcnt"]) == (ref["phy2log"], ref["log2phy"], ref["logcnt"])


def test_rebalance_bad_input_is_one_line(tmp_path):
    loads = tmp_path / "loads.json"
    loads.write_text(json.dumps({"weight": [[1, 2, 3]]}))
    out = runner.invoke(app, ["experts", "rebalance", "--loads", str(loads), "--replicas", "4", "--groups", "2",
                              "--nodes", "1", "--gpus", "2"])
    assert out.exit_code == 2 and "cannot be split into 2 groups" in out.output and "Traceback" not in out.output
    out = runner.invoke(app, ["experts", "rebalance", "--loads", str(tmp_path / "nope.json"), "--replicas", "4",
                              "--groups", "1", "--nodes", "1", "--gpus", "1"])
    assert out.exit_code == 2 and "no such file" in out.output


def test_experts_prints_hottest_and_worst_layers(tmp_path):
    dsn = f"chdb://{tmp_path / 'store'}"
    with Store.open(dsn) as store:
        store.migrate()
        store.insert("expert_hotness", _rows(
            "expert_hotness", 3, window_start=T0, window_end=T0 + dt.timedelta(hours=1), cluster="c1",
            engine_instance=["sg-0", "sg-0", "sg-1"], model=["deepseek-v3", "deepseek-v3", "qwen3-moe"], layer=[0, 1, 0],
            total_tokens=[1000, 1000, 500], balancedness=[0.9, 0.25, 0.5], max_vio=[0.1, 3.0, 1.0],
            hot_experts=[[17, 3], [42, 3], [5]], hot_shares=[[0.3, 0.1], [0.6, 0.2], [0.5]], imbalance_tax_usd=[0.5, 7.5, 2.0],
        ))
        store.insert("expert_balance_samples", _rows(
            "expert_balance_samples", 1, ts=T0, cluster="c1", engine_instance="vllm-ds-0", model="deepseek-v3", layer=-1,
            balancedness=0.42, source="vllm_eplb_log",
        ))
    out = runner.invoke(app, ["--store", dsn, "experts", "--model", "deepseek-v3", "--limit", "5"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    text = out.stdout
    hot_part, worst_part = text.split("Worst-balanced layers")
    assert hot_part.index("42") < hot_part.index("17")  # 600 tokens before 300
    assert "qwen3-moe" not in text
    assert "0.250" in worst_part and worst_part.index("0.250") < worst_part.index("0.900")
    assert "$7.50" in worst_part
    assert "Engine-reported" in text and "0.420" in text
    empty = runner.invoke(app, ["--store", dsn, "experts", "--since", "2030-01-01"], catch_exceptions=False)
    assert "no expert statistics yet" in empty.stdout
    bad = runner.invoke(app, ["--store", dsn, "experts", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_parse_since():
    now = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
    assert parse_since("24h", now) == now - dt.timedelta(hours=24)
    assert parse_since("7d", now) == now - dt.timedelta(days=7)
    assert parse_since("2026-11-01", now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert parse_since(None, now).year == 1970
    with pytest.raises(ValueError, match="24h"):
        parse_since("soon", now)
