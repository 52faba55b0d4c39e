"""`fleetledger init`, `sql` (read-only, every format, parameters) and `version` through the real CLI app."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fleetledger.cli.main import app
from fleetledger.cli.store_cmds import ReadOnlyViolation, check_read_only

runner = CliRunner()


@pytest.fixture
def dsn(tmp_path):
    return f"chdb://{tmp_path / 'cli-store'}"


def _run(dsn, *args):
    return runner.invoke(app, ["--store", dsn, *args], catch_exceptions=False)


def test_init_twice(dsn):
    first = _run(dsn, "init")
    assert first.exit_code == 0, first.output
    assert "0001_raw_tables" in first.output
    second = _run(dsn, "init")
    assert "none (already up to date)" in second.output


QUERY = "SELECT number AS n, toString(number * 2) AS s FROM numbers({k:UInt32})"


def test_sql_formats(dsn, tmp_path):
    out = _run(dsn, "sql", QUERY, "-p", "k=3", "-f", "csv")
    assert out.exit_code == 0, out.output
    assert list(csv.DictReader(io.StringIO(out.stdout))) == [{"n": "0", "s": "0"}, {"n": "1", "s": "2"}, {"n": "2", "s": "4"}]
    out = _run(dsn, "sql", QUERY, "-p", "k=2", "-f", "json")
    assert json.loads(out.stdout) == [{"n": 0, "s": "0"}, {"n": 1, "s": "2"}]
    out = _run(dsn, "sql", QUERY, "-p", "k=2")
    assert "2 rows" in out.stdout and "│ 1 │ 2 │" in out.stdout.replace("  ", " ")
    pq_file = tmp_path / "out.parquet"
    out = _run(dsn, "sql", QUERY, "-p", "k=4", "-f", "parquet", "-o", str(pq_file))
    assert out.exit_code == 0 and pq.read_table(pq_file).num_rows == 4


@pytest.mark.parametrize(
    "query",
    ["INSERT INTO prices (price_id) VALUES ('x')", "DROP TABLE prices", "  alter table x delete where 1",
     "SELECT 1; DROP TABLE prices", "/* sneaky */ TRUNCATE TABLE prices", "OPTIMIZE TABLE prices", ""],
)
def test_sql_refuses_writes_with_exit_code_2(dsn, query):
    out = _run(dsn, "sql", query)
    assert out.exit_code == 2
    assert "error:" in out.output


def test_refused_write_changed_nothing(dsn):
    _run(dsn, "init")
    _run(dsn, "sql", "DROP TABLE prices")
    out = _run(dsn, "sql", "SELECT count() AS c FROM prices", "-f", "json")
    assert json.loads(out.stdout) == [{"c": 0}]


def test_read_only_check_allows_reads():
    assert check_read_only("-- a comment\nWITH x AS (SELECT 1) SELECT * FROM x;") .startswith("WITH")
    assert check_read_only("select ';' as semicolon_in_string").startswith("select")
    for ok in ["SHOW TABLES", "DESCRIBE TABLE prices", "EXPLAIN SELECT 1", "(SELECT 1)"]:
        check_read_only(ok)
    with pytest.raises(ReadOnlyViolation, match="refuses a CREATE statement"):
        check_read_only("CREATE TABLE t (a Int8) ENGINE = Memory")


def test_parquet_needs_out(dsn):
    out = _run(dsn, "sql", "SELECT 1", "-f", "parquet")
    assert out.exit_code == 2 and "--format parquet needs --out FILE" in out.output


def test_bad_store_flag_exit_2(tmp_path):
    out = runner.invoke(app, ["--store", "ftp://nope", "init"])
    assert out.exit_code == 2 and "scheme 'ftp'" in out.output


def test_version():
    out = runner.invoke(app, ["version"])
    assert out.exit_code == 0 and out.stdout.startswith("fleetledger 0.1.0")
