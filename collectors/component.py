"""The contracts that join collector stages: components with a tiny lifecycle, and consumers.

Stages never name each other: a sampler, receiver or scraper is given a ``Consumer`` and hands
it Arrow tables conformed to a contract table (``schemas.tables``). The spool is a consumer;
so is a test's in-memory list. Errors a consumer raises say whether retrying can help.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pyarrow as pa


class ConsumerError(RuntimeError):
    """Base of consumer errors."""


class PermanentError(ConsumerError):
    """Retrying the same data cannot succeed (bad data, unknown table): drop and count it."""


class TransientError(ConsumerError):
    """Retrying later may succeed (store down, disk full for now): keep the data and back off."""


@runtime_checkable
class Consumer(Protocol):
    def consume(self, table: str, data: pa.Table) -> None:
        """Accept rows of contract table ``table``. Returning means the rows are durable
        (acknowledged); raising means they were not accepted."""
        ...


@runtime_checkable
class Component(Protocol):
    """A running part of the sidecar. ``start`` and ``shutdown`` are idempotent;
    ``shutdown`` returns within ``timeout_s`` and never raises."""

    name: str

    def start(self) -> None: ...

    def shutdown(self, timeout_s: float = 5.0) -> None: ...


class MemoryConsumer:
    """A consumer that keeps what it is given (tests, previews)."""

    def __init__(self) -> None:
        self.tables: dict[str, list[pa.Table]] = {}

    def consume(self, table: str, data: pa.Table) -> None:
        self.tables.setdefault(table, []).append(data)

    def table(self, name: str) -> pa.Table | None:
        parts = self.tables.get(name)
        return pa.concat_tables(parts) if parts else None

    def rows(self, name: str) -> int:
        return sum(t.num_rows for t in self.tables.get(name, []))
