"""Numbered SQL migrations: rendering (TTL, cluster mode) and idempotent application.

Migration files live in ``schemas/migrations/NNNN_name.sql``. They are plain ClickHouse DDL
with three kinds of placeholders, rendered per deployment:

- ``{{on_cluster}}``: empty, or ``ON CLUSTER `name``` in cluster mode;
- ``{{ttl_raw:COL}}`` / ``{{ttl_derived:COL}}``: a ``TTL toDateTime(COL) + INTERVAL N DAY``
  clause from the settings, or nothing when the retention is 0 (keep forever).

In cluster mode every ``CREATE TABLE x`` becomes a ``x_local`` table with the Replicated
variant of its engine on every replica, plus a ``Distributed`` table ``x`` over it, so
readers and writers keep using the plain name. A ``CREATE MATERIALIZED VIEW v TO t AS
SELECT ... FROM s`` is created on every replica, reading ``s_local`` and writing ``t_local``:
inserts reach a replica through the Distributed ``s`` and fire the view there, once, and its
rows replicate like any other and are read through the Distributed ``t``.

Each applied file is recorded in ``schema_migrations`` (version, name, checksum); applying
is idempotent, and a recorded file whose text has since changed is reported, not re-run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

MIGRATIONS_TABLE = "schema_migrations"

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TTL_RE = re.compile(r"\{\{ttl_(raw|derived):([a-z_]+)\}\}")
_CREATE_RE = re.compile(
    r"^\s*CREATE TABLE IF NOT EXISTS (?P<name>[a-z0-9_]+)(?: ON CLUSTER `[^`]+`)?[ \t]*\n(?P<body>.*)$",
    re.S,
)
_MV_RE = re.compile(
    r"^\s*CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>[a-z0-9_]+)(?: ON CLUSTER `[^`]+`)?\s+"
    r"TO (?P<target>[a-z0-9_]+)\s+AS\s+(?P<select>.*)$",
    re.S,
)
_FIRST_FROM_RE = re.compile(r"\bFROM\s+(?P<source>[a-z0-9_]+)\b")
_ALTER_RE = re.compile(r"^\s*ALTER TABLE (?P<name>[a-z0-9_]+) ON CLUSTER `[^`]+`(?P<rest>.*)$", re.S)
_ENGINE_RE = re.compile(r"ENGINE = (?P<engine>[A-Za-z]*MergeTree)(?:\((?P<args>[^)]*)\))?")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str  # the template text as stored

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RenderOptions:
    ttl_raw_days: int = 30
    ttl_derived_days: int = 0  # 0 = keep derived cost data forever
    cluster: str | None = None


class MigrationError(RuntimeError):
    """A migration could not be applied; carries the version and what happens next."""

    def __init__(self, version: int, name: str, statement: str, cause: BaseException):
        head = " ".join(statement.split())[:120]
        super().__init__(
            f"migration {version:04d}_{name} failed at `{head}...`: {cause}. "
            "Earlier migrations stay applied; fix the cause and run `fleetledger init` again."
        )
        self.version = version


def load_migrations() -> list[Migration]:
    """All migration files shipped in the package, in version order."""
    found = []
    for entry in resources.files("schemas").joinpath("migrations").iterdir():
        m = _FILE_RE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in schemas/migrations: {versions}")
    return found


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements on ';' at line ends, dropping '--' comment lines."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    text = "\n".join(lines)
    return [stmt.strip() for stmt in re.split(r";\s*(?:\n|$)", text) if stmt.strip()]


def render(sql: str, opts: RenderOptions) -> list[str]:
    """Render a migration template into executable statements for this deployment."""

    def ttl(match: re.Match[str]) -> str:
        days = opts.ttl_raw_days if match.group(1) == "raw" else opts.ttl_derived_days
        return f"TTL toDateTime({match.group(2)}) + INTERVAL {int(days)} DAY" if days > 0 else ""

    on_cluster = f"ON CLUSTER `{opts.cluster}`" if opts.cluster else ""
    text = _TTL_RE.sub(ttl, sql).replace("{{on_cluster}}", on_cluster)
    statements = split_statements(text)
    if not opts.cluster:
        return statements
    out: list[str] = []
    for stmt in statements:
        out.extend(_clusterize(stmt, opts.cluster))
    return out


def _clusterize(stmt: str, cluster: str) -> list[str]:
    """CREATE TABLE x -> replicated x_local on every replica + Distributed x over it;
    ALTER TABLE x -> the same ALTER on x_local and on x;
    CREATE MATERIALIZED VIEW v TO t ... FROM s -> the same view reading s_local into t_local."""
    mv = _MV_RE.match(stmt)
    if mv:
        return [_clusterize_view(mv, cluster)]
    alter = _ALTER_RE.match(stmt)
    if alter:  # the same change on the replicated storage and on the Distributed table over it
        name, rest = alter.group("name"), alter.group("rest")
        return [f"ALTER TABLE {name}_local ON CLUSTER `{cluster}`{rest}", f"ALTER TABLE {name} ON CLUSTER `{cluster}`{rest}"]
    m = _CREATE_RE.match(stmt)
    if not m:
        return [stmt]
    name, body = m.group("name"), m.group("body")
    local = f"{name}_local"

    def replicated(em: re.Match[str]) -> str:
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{local}', '{{replica}}'"
        args = em.group("args")
        return f"ENGINE = Replicated{em.group('engine')}({path}{', ' + args if args else ''})"

    body = _ENGINE_RE.sub(replicated, body, count=1)
    body = body.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
    return [
        f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER `{cluster}`\n{body}",
        f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER `{cluster}` AS {local}\n"
        f"ENGINE = Distributed(`{cluster}`, currentDatabase(), {local}, rand())",
    ]


def _clusterize_view(mv: re.Match[str], cluster: str) -> str:
    """A materialized view fires on inserts into the table of its first FROM, on the server that
    stores the block: in cluster mode that is the ``_local`` table, never the Distributed one."""
    select = mv.group("select")
    source = _FIRST_FROM_RE.search(select)
    if not source:
        raise ValueError(f"materialized view {mv.group('name')}: no FROM <table> to read the _local table of")
    select = f"{select[: source.start('source')]}{source.group('source')}_local{select[source.end('source'):]}"
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {mv.group('name')} ON CLUSTER `{cluster}` "
        f"TO {mv.group('target')}_local AS\n{select}"
    )


def migrations_table_ddl(cluster: str | None) -> str:
    on_cluster = f" ON CLUSTER `{cluster}`" if cluster else ""
    engine = (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/schema_migrations', '{replica}', applied_at)"
        if cluster
        else "ReplacingMergeTree(applied_at)"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}{on_cluster} "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        f"ENGINE = {engine} ORDER BY version"
    )


def apply_migrations(
    command: Callable[[str], object],
    applied: dict[int, str],
    opts: RenderOptions,
    migrations: Iterable[Migration] | None = None,
    on_applied: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Run every migration not yet in ``applied`` (version -> checksum) through ``command``.

    Returns what was applied now. Every DDL statement is ``IF NOT EXISTS``, so a run that died
    halfway is simply resumed. A changed checksum of an applied migration raises, because
    editing history silently is how schemas drift.
    """
    done = []
    for mig in migrations if migrations is not None else load_migrations():
        if mig.version in applied:
            if applied[mig.version] != mig.checksum:
                raise RuntimeError(
                    f"migration {mig.version:04d}_{mig.name} was applied with checksum "
                    f"{applied[mig.version]} but the file now has {mig.checksum}; add a new "
                    "numbered migration instead of editing an applied one"
                )
            continue
        for stmt in render(mig.sql, opts):
            try:
                command(stmt)
            except Exception as exc:  # the engine's own error type varies by backend
                raise MigrationError(mig.version, mig.name, stmt, exc) from exc
        if on_applied:
            on_applied(mig)
        done.append(mig)
    return done
