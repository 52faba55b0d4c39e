"""The Store: one class over clickhouse-connect for the embedded (chDB) and server modes.

It applies migrations, inserts Arrow tables and Polars frames conformed to the contract
schemas, and runs parameterised queries returning Arrow or Polars. On chDB, inserts take the
fast path ``INSERT INTO t SELECT * FROM Python(tbl)`` with exactly one Arrow table per insert
(chDB silently keeps only the first of several concatenated IPC streams).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from schemas.dsn import StoreDSN, parse_dsn
from schemas.migrations import (
    MIGRATIONS_TABLE,
    Migration,
    RenderOptions,
    apply_migrations,
    migrations_table_ddl,
)
from schemas.tables import conform

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """Base of the Store's errors; the message is one line a user can act on."""


class StoreBusyError(StoreError):
    """The embedded store directory is owned by another process."""


class StoreUnavailableError(StoreError):
    """The ClickHouse server cannot be reached (transient: retry later)."""


class StoreQueryError(StoreError):
    """The engine rejected a statement (permanent for that statement)."""


def _lock_owner(directory: Path) -> str | None:
    """If another process holds chDB's lock on ``directory/status``, describe it; else None."""
    status = directory / "status"
    if not status.exists():
        return None
    try:
        with open(status, "rb") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = fh.read(200).decode("utf-8", "replace")
                pid = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("PID:")), "")
                return f"PID {pid}" if pid else "another process"
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:
        return None
    return None


class Store:
    """A fleetledger store. Use ``Store.open(dsn)``; close it (or use ``with``) when done."""

    def __init__(self, dsn: StoreDSN, client: Any, cluster: str | None = None, ttl: RenderOptions | None = None):
        self.dsn = dsn
        self.client = client
        self.cluster = cluster
        self.render_options = ttl or RenderOptions(cluster=cluster)
        self._lock = threading.RLock()
        self._closed = False
        self._extra_handles: list[Any] = []  # more chDB connections for parallel inserts, opened lazily

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        dsn: str | StoreDSN,
        *,
        cluster: str | None = None,
        ttl_raw_days: int = 30,
        ttl_derived_days: int = 0,
        connect_timeout: float = 5.0,
    ) -> Store:
        parsed = dsn if isinstance(dsn, StoreDSN) else parse_dsn(dsn)
        opts = RenderOptions(ttl_raw_days=ttl_raw_days, ttl_derived_days=ttl_derived_days, cluster=cluster)
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        if parsed.embedded:
            assert parsed.path is not None
            if cluster:
                raise StoreError("cluster mode needs a ClickHouse server DSN (http(s)://...), not an embedded chdb:// store")
            owner = _lock_owner(parsed.path)
            if owner:
                raise StoreBusyError(
                    f"store {parsed.redacted()} is in use by {owner}; stop that process or point "
                    "--store / FLEETLEDGER_STORE at another directory (sidecars write the spool, not the store)"
                )
            parsed.path.mkdir(parents=True, exist_ok=True)
            try:
                client = clickhouse_connect.get_client(dsn=f"chdb://{parsed.path}")
            except ClickHouseError as exc:
                owner = _lock_owner(parsed.path)
                if owner:
                    raise StoreBusyError(
                        f"store {parsed.redacted()} is in use by {owner}; stop that process or use another store"
                    ) from None
                raise StoreError(f"cannot open embedded store {parsed.redacted()}: {exc}") from None
        else:
            try:
                client = clickhouse_connect.get_client(
                    host=parsed.host,
                    port=parsed.port,
                    username=parsed.username,
                    password=parsed.password,
                    database=parsed.database,
                    secure=parsed.kind == "https",
                    connect_timeout=connect_timeout,
                    send_receive_timeout=max(30.0, connect_timeout),
                )
            except ClickHouseError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StoreUnavailableError(
                    f"ClickHouse server {parsed.redacted()} is unreachable ({first[:200]}); check the DSN, "
                    "the network and that the server runs, then retry"
                ) from None
        return cls(parsed, client, cluster=cluster, ttl=opts)

    def close(self) -> None:
        """Release the engine (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for handle in self._extra_handles:
                try:
                    handle.close()
                except Exception:  # closing must never raise to callers
                    log.debug("error closing an insert connection", exc_info=True)
            try:
                self.client.close()
            except Exception:  # closing must never raise to callers
                log.debug("error closing store client", exc_info=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ migrations

    def applied_migrations(self) -> dict[int, str]:
        rows = self.client.query(f"SELECT version, argMax(checksum, applied_at) FROM {MIGRATIONS_TABLE} GROUP BY version")
        return {int(v): str(c) for v, c in rows.result_rows}

    def migrate(self) -> list[Migration]:
        """Create the migrations table and apply every pending migration (idempotent)."""
        with self._lock:
            self.client.command(migrations_table_ddl(self.cluster))
            applied = self.applied_migrations()

            def record(mig: Migration) -> None:
                self.client.insert(
                    MIGRATIONS_TABLE, [[mig.version, mig.name, mig.checksum]], column_names=["version", "name", "checksum"]
                )

            return apply_migrations(self.client.command, applied, self.render_options, on_applied=record)

    # ------------------------------------------------------------------ writes

    def insert(self, table: str, data: pa.Table | pl.DataFrame, *, dedup_token: str | None = None) -> int:
        """Insert rows conformed to the contract schema of ``table``; returns the row count.

        ``dedup_token`` makes a re-sent identical block a no-op (at-least-once shipping).
        """
        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        arrow = conform(table, arrow)
        if arrow.num_rows == 0:
            return 0
        # Replacing engines dedup at merge time and FINAL; collapsing again while writing the part
        # (optimize_on_insert) halves insert speed and buys nothing.
        settings = {"optimize_on_insert": "0"}
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
        with self._lock:
            if self.dsn.embedded:
                self._insert_chdb(table, arrow, settings)
            else:
                self._wrap(lambda: self.client.insert_arrow(table, arrow, settings=settings), table)
        return arrow.num_rows

    def _insert_chdb(self, table: str, arrow_table: pa.Table, settings: Mapping[str, str]) -> None:
        """chDB fast path: the engine reads the Arrow table from a Python variable, one table per
        insert. A large table is cut into one slice per core, inserted concurrently on separate
        connections to the same engine (chDB releases the GIL while it writes the parts); each slice
        gets its own deduplication token, derived from the caller's, so a retried insert stays a no-op.
        """
        slices = _slices(arrow_table, PARALLEL_INSERT_MIN_ROWS, INSERT_WORKERS)
        if len(slices) == 1:
            _run_insert(self.client._backend._handle.conn, self.client._backend._handle.lock, table, arrow_table, settings)
            return
        while len(self._extra_handles) < len(slices) - 1:
            import chdb

            self._extra_handles.append(chdb.connect(self.client._backend.connection_string))
        errors: list[BaseException] = []

        def work(conn: Any, lock: Any, part: pa.Table, k: int) -> None:
            part_settings = dict(settings)
            if "insert_deduplication_token" in part_settings:
                part_settings["insert_deduplication_token"] += f"/{k}of{len(slices)}"
            try:
                _run_insert(conn, lock, table, part, part_settings)
            except BaseException as exc:  # reported below, after every slice finished
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(conn, threading.Lock(), part, k + 1))
                   for k, (conn, part) in enumerate(zip(self._extra_handles, slices[1:], strict=False))]
        for t in threads:
            t.start()
        main = self.client._backend._handle
        work(main.conn, main.lock, slices[0], 0)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ reads

    def query_arrow(self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a parameterised query (``{name:Type}`` placeholders) and return Arrow."""
        with self._lock:
            return self._wrap(lambda: self.client.query_arrow(sql, parameters=dict(parameters or {}), settings=dict(settings or {})), sql)

    def query_polars(self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> pl.DataFrame:
        return pl.from_arrow(self.query_arrow(sql, parameters, settings))  # type: ignore[return-value]

    def query_rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple]:
        with self._lock:
            return self._wrap(lambda: self.client.query(sql, parameters=dict(parameters or {})).result_rows, sql)

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        with self._lock:
            return self._wrap(lambda: self.client.command(sql, parameters=dict(parameters or {})), sql)

    def count(self, table: str, final: bool = False) -> int:
        return int(self.query_rows(f"SELECT count() FROM `{table}`{' FINAL' if final else ''}")[0][0])

    def _wrap(self, fn: Any, what: str) -> Any:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            return fn()
        except OperationalError as exc:
            raise StoreUnavailableError(f"store {self.dsn.redacted()} unavailable: {str(exc).splitlines()[0]}") from exc
        except DatabaseError as exc:
            msg = " ".join(str(exc).split())
            raise StoreQueryError(f"{msg[:600]} (statement: {' '.join(what.split())[:160]})") from exc


PARALLEL_INSERT_MIN_ROWS = 200_000  # below this one insert is cheaper than coordinating several
INSERT_WORKERS = max(1, min(4, os.cpu_count() or 1))


def _slices(data: pa.Table, min_rows: int, workers: int) -> list[pa.Table]:
    """Zero-copy slices of ``data``: one per worker when it is large enough, else the table itself."""
    n = data.num_rows
    k = min(workers, max(1, n // min_rows))
    if k <= 1:
        return [data]
    step = -(-n // k)
    return [data.slice(i, step) for i in range(0, n, step)]


def _run_insert(conn: Any, lock: Any, table: str, arrow_table: pa.Table, settings: Mapping[str, str]) -> None:
    """One ``INSERT ... SELECT * FROM Python(arrow_table)`` on a chDB connection."""
    setting_sql = ""
    if settings:
        setting_sql = " SETTINGS " + ", ".join(
            f"{k} = {v}" if v.isdigit() else f"{k} = '{_escape(v)}'" for k, v in settings.items()
        )
    cols = ", ".join(f"`{name}`" for name in arrow_table.column_names)
    sql = f"INSERT INTO `{table}` ({cols}) SELECT {cols} FROM Python(arrow_table){setting_sql}"
    with lock:
        try:
            conn.query(sql)
        except Exception as exc:
            raise StoreQueryError(f"insert into {table} failed: {exc}") from exc


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
