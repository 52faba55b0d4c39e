"""Settings: defaults, TOML file, environment and flags, in that order of precedence."""

from __future__ import annotations

import pytest

from fleetledger.settings import SettingsError, load_settings


def test_default_store_is_embedded_under_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.store_dsn == f"chdb://{tmp_path / '.fleetledger' / 'store'}"
    assert s.pipelines.weighting == "tokens"


def test_precedence_flags_over_env_over_toml(tmp_path, monkeypatch):
    cfg = tmp_path / "fl.toml"
    cfg.write_text(
        'store = "chdb:///from/toml"\nttl_raw_days = 3\n[pipelines]\ndecode_weight = 2.5\nweighting = "time"\n'
        '[collect]\ncluster = "eu-1"\n'
    )
    s = load_settings(cfg)
    assert (s.store, s.ttl_raw_days, s.pipelines.decode_weight, s.pipelines.weighting, s.collect.cluster) == (
        "chdb:///from/toml", 3, 2.5, "time", "eu-1")
    monkeypatch.setenv("FLEETLEDGER_STORE", "chdb:///from/env")
    monkeypatch.setenv("FLEETLEDGER_PIPELINES__DECODE_WEIGHT", "4")
    s = load_settings(cfg)
    assert (s.store, s.pipelines.decode_weight, s.pipelines.weighting) == ("chdb:///from/env", 4.0, "time")
    s = load_settings(cfg, store="http://u:p@ch:8123/db")
    assert s.store == "http://u:p@ch:8123/db"


@pytest.mark.parametrize(
    "kwargs,env,needle",
    [
        ({"store": "mysql://x"}, {}, "setting store (FLEETLEDGER_STORE): store DSN 'mysql://x' has scheme 'mysql'"),
        ({}, {"FLEETLEDGER_PIPELINES__WEIGHTING": "flops"}, "setting pipelines.weighting (FLEETLEDGER_PIPELINES__WEIGHTING)"),
        ({}, {"FLEETLEDGER_TTL_RAW_DAYS": "-1"}, "setting ttl_raw_days (FLEETLEDGER_TTL_RAW_DAYS)"),
        ({"log_level": "LOUD"}, {}, "must be one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_invalid_settings_name_the_setting(monkeypatch, kwargs, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as info:
        load_settings(**kwargs)
    assert needle in str(info.value)


def test_unknown_key_in_toml_is_refused(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('stor = "chdb:///typo"\n')
    with pytest.raises(SettingsError, match="setting stor"):
        load_settings(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(tmp_path / "nope.toml")
