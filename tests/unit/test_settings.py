"""Settings: what a child process inherits is exactly what the parent had."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayflow.settings import Settings


def test_as_env_gives_a_child_process_the_same_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(Settings().as_env()):
        monkeypatch.delenv(name, raising=False)
    parent = Settings(kafka_bootstrap_servers="k1:1,k2:2", temporal_address="t:7",
                      data_dir=tmp_path, RELAYFLOW_STORE_PATH=tmp_path / "s.db",
                      schema_registry_url="http://r:8081", bridge_park_keys=False,
                      bridge_shutdown_seconds=2.5, cache_dir=tmp_path / "cache")
    env = parent.as_env()
    assert env["RELAYFLOW_STORE_PATH"] == str(tmp_path / "s.db")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.model_dump() == parent.model_dump()
    assert child.store_path == parent.store_path


def test_unset_optional_settings_stay_unset() -> None:
    env = Settings(schema_registry_url=None).as_env()
    assert "RELAYFLOW_SCHEMA_REGISTRY_URL" not in env
    assert env["RELAYFLOW_STORE_PATH"].endswith("store.db")
