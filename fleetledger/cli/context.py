"""What every command shares: the loaded settings, the console, clean one-line failures."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import typer
from rich.console import Console

from fleetledger.settings import Settings, SettingsError, apply_prefect_env, load_settings
from schemas import InvalidDSNError, Store, StoreError

console = Console()
err_console = Console(stderr=True)


@dataclass
class AppState:
    config_file: object = None
    overrides: dict = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            with cli_errors():
                self._settings = load_settings(self.config_file, **self.overrides)
            logging.basicConfig(level=self._settings.log_level, format="%(levelname)s %(name)s: %(message)s")
            logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call to Prefect's API
            apply_prefect_env(self._settings)
        return self._settings


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red line and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the errors users can act on into one line and an exit code, not a traceback."""
    try:
        yield
    except (SettingsError, InvalidDSNError) as exc:
        raise fail(str(exc), 2) from None
    except StoreError as exc:
        raise fail(str(exc), 1) from None


@contextlib.contextmanager
def open_store(ctx: typer.Context, migrate: bool = True) -> Iterator[Store]:
    """Open the configured store (applying pending migrations) for one command."""
    s = state(ctx).settings
    with cli_errors():
        store = Store.open(
            s.store_dsn, cluster=s.store_cluster, ttl_raw_days=s.ttl_raw_days, ttl_derived_days=s.ttl_derived_days
        )
        try:
            if migrate:
                store.migrate()
            yield store
        finally:
            store.close()
