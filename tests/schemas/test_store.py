"""The Store on the real chDB engine: migrations, round trips, queries, and its errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import polars as pl
import pyarrow as pa
import pytest

from schemas import InvalidDSNError, Store, StoreUnavailableError, parse_dsn
from schemas.migrations import load_migrations
from schemas.tables import TABLES, conform
from tests.schemas.rows import sample_table


def test_migrations_apply_once_and_are_recorded(store):
    versions = [m.version for m in load_migrations()]
    assert store.migrate() == []  # the fixture already applied them; a second run applies nothing
    recorded = store.applied_migrations()
    assert sorted(recorded) == versions
    assert store.count("schema_migrations", final=True) == len(versions)


def test_edited_applied_migration_is_refused(store):
    store.command("ALTER TABLE schema_migrations UPDATE checksum = 'deadbeef' WHERE version = 1 SETTINGS mutations_sync = 1")
    with pytest.raises(RuntimeError, match="was applied with checksum deadbeef"):
        store.migrate()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_round_trip_every_table(store, table):
    data = sample_table(TABLES[table], n=5)
    assert store.insert(table, data) == 5
    back = store.query_arrow(f"SELECT * FROM `{table}`")
    back = conform(table, back)
    key = TABLES[table].names
    assert back.sort_by([(k, "ascending") for k in key[:1]]).to_pylist() == data.sort_by(
        [(k, "ascending") for k in key[:1]]
    ).to_pylist()


def test_polars_insert_and_parameterised_query(store):
    df = pl.from_arrow(sample_table(TABLES["gpu_samples"], n=10))
    store.insert("gpu_samples", df)
    out = store.query_polars(
        "SELECT gpu_uuid, count() AS n FROM gpu_samples WHERE gpu_uuid = {g:String} GROUP BY gpu_uuid", {"g": "gpu_uuid-1"}
    )
    assert out.to_dicts() == [{"gpu_uuid": "gpu_uuid-1", "n": 1}]
    # a value that would be SQL if concatenated is only ever a value
    evil = "x' OR 1=1 --"
    assert store.query_rows("SELECT count() FROM gpu_samples WHERE gpu_uuid = {g:String}", {"g": evil}) == [(0,)]


def test_dedup_token_makes_a_resent_block_a_noop(store):
    data = sample_table(TABLES["gpu_samples"], n=50)
    store.insert("gpu_samples", data, dedup_token="seg-1")
    store.insert("gpu_samples", data, dedup_token="seg-1")
    assert store.count("gpu_samples") == 50
    store.insert("gpu_samples", data, dedup_token="seg-2")  # another token: inserted, merged away by FINAL
    assert store.count("gpu_samples", final=True) == 50


def test_insert_rejects_missing_required_column(store):
    bad = pa.table({"ts": pa.array([1], pa.timestamp("ms", tz="UTC"))})
    with pytest.raises(ValueError, match="gpu_samples: required column 'cluster' is missing"):
        store.insert("gpu_samples", bad)


def test_second_process_gets_one_clear_line(tmp_path):
    path = tmp_path / "busy"
    holder = Store.open(f"chdb://{path}")
    holder.migrate()
    try:
        code = textwrap.dedent(f"""
            from schemas import Store, StoreBusyError
            try:
                Store.open("chdb://{path}")
            except StoreBusyError as exc:
                print("BUSY:", exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "BUSY: store chdb://" in out.stdout and "is in use by PID" in out.stdout
        assert "Traceback" not in out.stderr
    finally:
        holder.close()


def test_cli_busy_store_prints_no_traceback(tmp_path):
    path = tmp_path / "busy-cli"
    holder = Store.open(f"chdb://{path}")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "fleetledger.cli.main", "--store", f"chdb://{path}", "init"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        holder.close()
    assert out.returncode == 1
    assert "is in use by PID" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreachable_server_is_one_clear_error():
    with pytest.raises(StoreUnavailableError, match=r"ClickHouse server http://default@127.0.0.1:1/default is unreachable"):
        Store.open("http://127.0.0.1:1/default", connect_timeout=1)


@pytest.mark.parametrize(
    "dsn,message",
    [
        ("", "empty"),
        ("chdb://relative/dir", "host part"),
        ("chdb:///", "must be absolute"),
        ("postgres://h/db", "scheme 'postgres'"),
        ("http:///db", "names no host"),
        ("http://h:99999/db", "out of range"),
        ("http://h/a/b", "one database name"),
    ],
)
def test_bad_dsn_says_what_is_valid(dsn, message):
    with pytest.raises(InvalidDSNError, match=message) as info:
        parse_dsn(dsn)
    assert "chdb:///absolute/dir" in str(info.value)


def test_server_dsn_parts():
    d = parse_dsn("https://ann:s%40cret@ch.example:9440/costs")
    assert (d.kind, d.host, d.port, d.username, d.password, d.database) == ("https", "ch.example", 9440, "ann", "s@cret", "costs")
    assert "s@cret" not in d.redacted()


def test_large_inserts_run_as_parallel_slices_exactly_once(store, monkeypatch):
    import schemas.store as store_module

    monkeypatch.setattr(store_module, "PARALLEL_INSERT_MIN_ROWS", 10)
    monkeypatch.setattr(store_module, "INSERT_WORKERS", 3)
    data = sample_table(TABLES["gpu_samples"], n=95)
    assert [t.num_rows for t in store_module._slices(data, 10, 3)] == [32, 32, 31]
    store.insert("gpu_samples", data, dedup_token="seg-big")
    store.insert("gpu_samples", data, dedup_token="seg-big")  # a retry: every slice is deduplicated
    assert store.count("gpu_samples") == 95
    got = store.query_rows("SELECT sum(gpu_index), uniqExact(gpu_uuid) FROM gpu_samples")[0]
    assert got == (sum(data.column("gpu_index").to_pylist()), 95)
    assert len(store._extra_handles) == 2  # two more connections to the same engine, closed with the store


def test_a_failing_slice_fails_the_insert(store, monkeypatch):
    import schemas.store as store_module
    from schemas import StoreQueryError

    monkeypatch.setattr(store_module, "PARALLEL_INSERT_MIN_ROWS", 10)
    monkeypatch.setattr(store_module, "INSERT_WORKERS", 2)
    store.command("ALTER TABLE gpu_samples ADD CONSTRAINT small_index CHECK gpu_index < 400")
    data = sample_table(TABLES["gpu_samples"], n=60)  # gpu_index = 7i + 1: the second slice breaks the rule
    with pytest.raises(StoreQueryError, match="insert into gpu_samples failed"):
        store.insert("gpu_samples", data)
