"""The FinOps views of migration 0003 agree with the tables they summarise."""

from __future__ import annotations

import math

import pytest

from dashboards.sample_data import derived_tables, layout


def _one(store, sql):
    return store.query_rows(sql)[0]


def test_workflow_costs_daily_sums_the_hours(fleet_store):
    view = _one(fleet_store, "SELECT sum(cost_usd), sum(requests), count() FROM workflow_costs_daily_v")
    base = _one(fleet_store, "SELECT sum(cost_usd), sum(requests) FROM workflow_costs_hourly FINAL")
    assert math.isclose(view[0], base[0], rel_tol=1e-9) and view[1] == base[1]
    days = _one(fleet_store, "SELECT uniqExact(day) FROM workflow_costs_daily_v")[0]
    assert days == 2


def test_idle_reservations_and_utilisation(fleet_store):
    rows = fleet_store.query_rows(
        "SELECT reservation_id, sum(idle_cost_usd), sum(reserved_cost_usd), max(idle_cost_share) "
        "FROM idle_reservations_v GROUP BY reservation_id ORDER BY reservation_id")
    base = dict(fleet_store.query_rows(
        "SELECT reservation_id, sum(idle_cost_usd) FROM idle_costs_hourly FINAL GROUP BY reservation_id"))
    assert len(rows) == len(base) == 3
    for rid, idle, reserved, share in rows:
        assert math.isclose(idle, base[rid], rel_tol=1e-9) and 0 < idle <= reserved and 0 < share <= 1
    util = fleet_store.query_rows(
        "SELECT min(utilisation), max(utilisation), sum(busy_gpu_hours) FROM reservation_utilisation_v")[0]
    busy = _one(fleet_store, "SELECT sum(busy_seconds) / 3600 FROM idle_costs_hourly FINAL")[0]
    assert 0 <= util[0] < util[1] <= 1 and math.isclose(util[2], busy, rel_tol=1e-9)


def test_hot_experts_rank_and_share(fleet_store, fleet_spec):
    top = fleet_store.query_rows(
        "SELECT rank, expert, share, hot_experts[1], hot_shares[1] FROM hot_experts_v AS v "
        "INNER JOIN (SELECT window_start, engine_instance, layer, hot_experts, hot_shares FROM expert_hotness FINAL) AS h "
        "USING (window_start, engine_instance, layer) WHERE rank = 1 LIMIT 50")
    assert top and all(r[1] == r[3] and r[2] == r[4] for r in top)
    n = _one(fleet_store, "SELECT count(), max(rank) FROM hot_experts_v")
    rows = _one(fleet_store, "SELECT count() FROM expert_hotness FINAL")[0]
    assert n == (rows * fleet_spec.hot_k, fleet_spec.hot_k)


def test_unit_economics_are_ratios_of_sums(fleet_store):
    for model, wf, usd_1m, gpus_1k, tokens, cost in fleet_store.query_rows(
        "SELECT model, workflow, sum(cost_usd) / sum(tokens) * 1e6, sum(gpu_seconds) / sum(tokens) * 1e3, "
        "sum(tokens), sum(cost_usd) FROM unit_economics_v GROUP BY model, workflow"
    ):
        base = _one(fleet_store,
                    "SELECT sum(prompt_tokens) + sum(completion_tokens), sum(cost_usd) FROM workflow_costs_hourly FINAL "
                    f"WHERE model = '{model}' AND workflow = '{wf}'")
        assert tokens == base[0] and math.isclose(cost, base[1], rel_tol=1e-9)
        assert usd_1m > 0 and gpus_1k > 0
    day = _one(fleet_store, "SELECT usd_per_1m_tokens, cost_usd / tokens * 1e6 FROM unit_economics_v LIMIT 1")
    assert math.isclose(day[0], day[1], rel_tol=1e-12)


@pytest.mark.parametrize("view", ["workflow_costs_daily_v", "idle_reservations_v", "focus_costs_v"])
def test_views_read_the_newest_run_version_only(fleet_store, fleet_spec, view):
    metric = {"workflow_costs_daily_v": "sum(cost_usd)", "idle_reservations_v": "sum(reserved_cost_usd)",
              "focus_costs_v": "sum(EffectiveCost)"}[view]
    before = _one(fleet_store, f"SELECT {metric} FROM {view}")[0]
    for name, table in derived_tables(fleet_spec, layout(fleet_spec), run_version=2).items():
        fleet_store.insert(name, table)  # the same window re-run: must replace, not add
    after = _one(fleet_store, f"SELECT {metric} FROM {view}")[0]
    assert math.isclose(before, after, rel_tol=1e-9)


def test_every_example_query_of_the_readme_runs(fleet_store, fleet_spec):
    from pathlib import Path

    from schemas.migrations import split_statements

    text = (Path(__file__).resolve().parents[2] / "dashboards" / "sql" / "finops_examples.sql").read_text()
    statements = split_statements(text)
    assert len(statements) == 6
    params = {"from": fleet_spec.start.replace(tzinfo=None), "to": fleet_spec.end.replace(tzinfo=None)}
    for sql in statements:
        used = {k: v.date() if f"{{{k}:Date}}" in sql else v for k, v in params.items()}
        rows = fleet_store.query_rows(sql, used)
        assert rows, sql.splitlines()[0]


def test_readonly_role_ddl_parses_and_grants_everything_the_dashboards_read(store):
    import re
    from pathlib import Path

    from dashboards.report import load_dashboards
    from schemas.migrations import load_migrations, split_statements

    text = (Path(__file__).resolve().parents[2] / "dashboards" / "sql" / "readonly_role.sql").read_text()
    statements = split_statements(text)
    for sql in statements:  # the parser accepts every statement (chDB has no user directory to apply it)
        store.query_rows("EXPLAIN AST " + sql)
    granted = {m.group(1) for s in statements if (m := re.match(r"GRANT SELECT ON default\.(\w+) TO", s))}
    assert all("readonly = 2" in s for s in statements if s.startswith("CREATE SETTINGS PROFILE"))
    views = set(re.findall(r"CREATE VIEW IF NOT EXISTS (\w+)", next(m.sql for m in load_migrations() if m.version == 3)))
    read = {t for d in load_dashboards() for p in d["panels"] for t in re.findall(r"FROM (\w+)", p["targets"][0]["rawSql"])}
    read |= {t for d in load_dashboards() for v in d["templating"]["list"] if v["type"] == "query"
             for t in re.findall(r"FROM (\w+)", v["query"])}
    assert views and read and views | read <= granted, (views | read) - granted
    with pytest.raises(Exception, match="Syntax error"):
        store.query_rows("EXPLAIN AST GRANT SELEKT ON x TO y")
