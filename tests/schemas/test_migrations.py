"""Migration rendering: TTL from settings, cluster mode DDL that the ClickHouse parser accepts."""

from __future__ import annotations

import pytest

from schemas.migrations import RenderOptions, load_migrations, render, split_statements


def _all(opts: RenderOptions) -> list[str]:
    return [stmt for mig in load_migrations() for stmt in render(mig.sql, opts)]


def test_versions_are_numbered_and_unique():
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_ttl_follows_settings():
    stmts = _all(RenderOptions(ttl_raw_days=7, ttl_derived_days=0))
    samples = next(s for s in stmts if s.startswith("CREATE TABLE IF NOT EXISTS gpu_samples"))
    costs = next(s for s in stmts if s.startswith("CREATE TABLE IF NOT EXISTS request_costs"))
    assert "TTL toDateTime(ts) + INTERVAL 7 DAY" in samples
    assert "TTL" not in costs
    assert not any("{{" in s for s in stmts)


def test_cluster_mode_uses_replicated_and_distributed():
    stmts = _all(RenderOptions(cluster="fleet"))
    creates = [s for s in stmts if s.startswith("CREATE TABLE")]
    local = next(s for s in creates if s.startswith("CREATE TABLE IF NOT EXISTS gpu_samples_local ON CLUSTER `fleet`"))
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/gpu_samples_local', '{replica}')" in local
    dist = next(s for s in creates if s.startswith("CREATE TABLE IF NOT EXISTS gpu_samples ON CLUSTER `fleet` AS gpu_samples_local"))
    assert "ENGINE = Distributed(`fleet`, currentDatabase(), gpu_samples_local, rand())" in dist
    versioned = next(s for s in creates if s.startswith("CREATE TABLE IF NOT EXISTS request_costs_local"))
    assert "'{replica}', run_version)" in versioned
    assert all("ON CLUSTER `fleet`" in s for s in stmts if s.startswith(("CREATE", "ALTER", "DROP")))


def test_every_cluster_statement_parses_in_clickhouse(store):
    stmts = _all(RenderOptions(cluster="fleet", ttl_raw_days=30))
    assert stmts
    for stmt in stmts:
        formatted = store.query_rows("SELECT formatQuery({q:String})", {"q": stmt})[0][0]
        assert formatted.split()[0] == stmt.split()[0], stmt[:80]


def test_parser_rejects_garbage_so_the_check_above_means_something(store):
    from schemas.store import StoreQueryError

    with pytest.raises(StoreQueryError):
        store.query_rows("SELECT formatQuery({q:String})", {"q": "CREATE TABLE x ON CLUSTER ENGINE = ("})


def test_split_statements_drops_comments():
    assert split_statements("-- hi\nSELECT 1;\n-- x\nSELECT 2;\n") == ["SELECT 1", "SELECT 2"]


def test_cluster_mode_materialized_view_reads_and_writes_the_local_tables(store):
    stmts = _all(RenderOptions(cluster="fleet"))
    views = [s for s in stmts if s.startswith("CREATE MATERIALIZED VIEW")]
    assert views, "no materialized view rendered"
    mv = next(s for s in views if s.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_samples_5m_mv "))
    assert mv.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_samples_5m_mv ON CLUSTER `fleet` TO gpu_samples_5m_local AS")
    # what the engine's parser makes of it, not our string: it writes to and reads from _local tables
    formatted = store.query_rows("SELECT formatQuery({q:String})", {"q": mv})[0][0]
    assert formatted.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_samples_5m_mv ON CLUSTER fleet TO gpu_samples_5m_local\n")
    tree = [line[0].strip() for line in store.query_rows("EXPLAIN AST " + mv)]
    assert [t for t in tree if t.startswith("TableIdentifier")] == ["TableIdentifier gpu_samples_local"], tree
    # the rollup table itself is clustered like the others (its name has a digit)
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS gpu_samples_5m_local ON CLUSTER `fleet`\n") and
               "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/gpu_samples_5m_local', '{replica}')"
               in s for s in stmts)
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS gpu_samples_5m ON CLUSTER `fleet` AS gpu_samples_5m_local\n")
               for s in stmts)
    # single-node mode is untouched: the plain tables
    plain = next(s for s in _all(RenderOptions()) if s.startswith("CREATE MATERIALIZED VIEW"))
    assert " TO gpu_samples_5m AS" in plain and "FROM gpu_samples\n" in plain


def test_cluster_mode_alters_the_local_and_the_distributed_table():
    stmts = [s for s in _all(RenderOptions(cluster="fleet")) if s.startswith("ALTER TABLE spool_segments")]
    assert [s.split(" ON CLUSTER")[0] for s in stmts] == ["ALTER TABLE spool_segments_local", "ALTER TABLE spool_segments"]
    assert all("ADD COLUMN IF NOT EXISTS data_start" in s for s in stmts)
