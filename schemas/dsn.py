"""Store DSNs: ``chdb:///absolute/dir`` (embedded) or ``http(s)://user:pass@host:8123/db``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

VALID_FORMS = "chdb:///absolute/dir (embedded) or http(s)://user:pass@host:8123/db (server)"


class InvalidDSNError(ValueError):
    """A store DSN that fleetledger cannot use; the message names the valid forms."""


@dataclass(frozen=True)
class StoreDSN:
    kind: str  # 'chdb' | 'http' | 'https'
    path: Path | None = None  # chdb directory
    host: str = ""
    port: int = 8123
    username: str = "default"
    password: str = ""
    database: str = "default"

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def redacted(self) -> str:
        """The DSN for messages and logs, never with the password."""
        if self.embedded:
            return f"chdb://{self.path}"
        return f"{self.kind}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_dsn(dsn: str) -> StoreDSN:
    """Parse and validate a store DSN; raises InvalidDSNError saying what is wrong."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise InvalidDSNError(f"the store DSN is empty; use {VALID_FORMS}")
    parts = urlsplit(dsn.strip())
    if parts.scheme == "chdb":
        if parts.netloc:
            raise InvalidDSNError(
                f"store DSN {dsn!r} has a host part {parts.netloc!r}; an embedded store needs an "
                f"absolute directory with three slashes, e.g. chdb:///var/lib/fleetledger; use {VALID_FORMS}"
            )
        path = unquote(parts.path)
        if not path.startswith("/") or path == "/":
            raise InvalidDSNError(f"store DSN {dsn!r}: the chDB directory must be absolute; use {VALID_FORMS}")
        return StoreDSN(kind="chdb", path=Path(path))
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidDSNError(f"store DSN {dsn!r} names no host; use {VALID_FORMS}")
        try:
            port = parts.port or (8443 if parts.scheme == "https" else 8123)
        except ValueError as exc:
            raise InvalidDSNError(f"store DSN {dsn!r}: {exc}; use {VALID_FORMS}") from None
        database = parts.path.strip("/") or "default"
        if "/" in database:
            raise InvalidDSNError(f"store DSN {dsn!r}: the path must be one database name; use {VALID_FORMS}")
        return StoreDSN(
            kind=parts.scheme,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            database=database,
        )
    raise InvalidDSNError(f"store DSN {dsn!r} has scheme {parts.scheme or '(none)'!r}; use {VALID_FORMS}")


def chdb_dsn(directory: Path | str) -> str:
    """The embedded DSN for a directory (made absolute)."""
    return f"chdb://{Path(directory).resolve()}"
