"""One typed settings object: environment ``FLEETLEDGER_*``, an optional TOML file, flags.

Precedence, highest first: command-line flags, environment variables (nested sections with
``__``, e.g. ``FLEETLEDGER_PIPELINES__WEIGHTING=time``), the TOML file given by ``--config``,
then the defaults below. Invalid settings fail at start with ``SettingsError`` naming the
setting and the valid forms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from collectors.config import CollectorConfig
from pipelines.config import PipelineConfig
from schemas.dsn import InvalidDSNError, chdb_dsn, parse_dsn

DEFAULT_HOME = Path(".fleetledger")


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the setting and what is valid."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLEDGER_", env_nested_delimiter="__", extra="forbid")
    _toml_file: ClassVar[Path | None] = None

    store: str = Field(default="", description="store DSN: chdb:///abs/dir or http(s)://user:pass@host:8123/db")
    store_cluster: str | None = Field(default=None, description="ClickHouse cluster name for ON CLUSTER DDL")
    ttl_raw_days: int = Field(default=30, ge=0, description="retention of raw tables; 0 keeps forever")
    ttl_derived_days: int = Field(default=0, ge=0, description="retention of cost tables; 0 keeps forever")
    home: Path = Field(default=DEFAULT_HOME, description="working folder for the default store, spool, Prefect")
    log_level: str = Field(default="INFO")
    collect: CollectorConfig = Field(default_factory=CollectorConfig)
    pipelines: PipelineConfig = Field(default_factory=PipelineConfig)

    @field_validator("store")
    @classmethod
    def _valid_store(cls, value: str) -> str:
        if value:
            parse_dsn(value)  # raises InvalidDSNError naming the valid forms
        return value

    @field_validator("log_level")
    @classmethod
    def _valid_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    @property
    def store_dsn(self) -> str:
        """The effective DSN: the configured one, or an embedded store under ``home``."""
        return self.store or chdb_dsn(self.home / "store")

    @property
    def prefect_home(self) -> Path:
        return (self.home / "prefect").resolve()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from flags (``overrides``, None values ignored), env and TOML."""
    if config_file is not None and not Path(config_file).is_file():
        raise SettingsError(f"--config {config_file}: no such file; pass a TOML file or leave --config out")
    flags = {k: v for k, v in overrides.items() if v is not None}

    class _Loaded(Settings):
        _toml_file = Path(config_file) if config_file else None

    try:
        loaded = _Loaded(**flags)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except InvalidDSNError as exc:
        raise SettingsError(f"store: {exc}") from None
    except ValueError as exc:  # e.g. malformed TOML
        raise SettingsError(f"{config_file}: {exc}") from None
    return Settings.model_construct(**dict(loaded))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        env = "FLEETLEDGER_" + "__".join(str(p) for p in err["loc"]).upper()
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"setting {name} ({env}): {msg}")
    return "; ".join(parts)


def apply_prefect_env(settings: Settings) -> None:
    """Point Prefect at a project-local home with telemetry off, unless the user chose otherwise."""
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    # Prefect's temporary server cannot create its database in a missing folder (it then times out)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # a cold temporary server on a busy 2-core machine can take longer than Prefect's 20 s default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
