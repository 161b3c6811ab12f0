"""Settings: what a child process inherits is exactly what the parent had; secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.config.settings import SettingError, Settings, load_settings
from relayflow.reference.settings import ReferenceSettings


def test_as_env_gives_a_child_process_the_same_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(Settings().as_env()):
        monkeypatch.delenv(name, raising=False)
    parent = Settings(kafka_bootstrap_servers="k1:1,k2:2", temporal_address="t:7",
                      data_dir=tmp_path, schema_registry_url="http://r:8081",
                      bridge_park_keys=False, bridge_shutdown_seconds=2.5,
                      cache_dir=tmp_path / "cache")
    env = parent.as_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.model_dump() == parent.model_dump()


def test_as_env_gives_a_child_process_the_same_reference_store(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*Settings().as_env(), *ReferenceSettings().as_env()]:
        monkeypatch.delenv(name, raising=False)
    parent = ReferenceSettings(data_dir=tmp_path, RELAYFLOW_STORE_PATH=tmp_path / "s.db",
                               card_limit_cents=7)
    env = parent.as_env()
    assert env["RELAYFLOW_STORE_PATH"] == str(tmp_path / "s.db")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = ReferenceSettings()
    assert child.model_dump() == parent.model_dump()
    assert child.store_path == parent.store_path


def test_unset_optional_settings_stay_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYFLOW_STORE_PATH", raising=False)
    env = Settings(schema_registry_url=None).as_env()
    assert "RELAYFLOW_SCHEMA_REGISTRY_URL" not in env
    assert ReferenceSettings().as_env()["RELAYFLOW_STORE_PATH"].endswith("store.db")


@pytest.fixture
def secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A folder of secret files, as Docker mounts them, named by RELAYFLOW_SECRETS_DIR."""
    for name in Settings().as_env():
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "secrets"
    folder.mkdir()
    monkeypatch.setenv("RELAYFLOW_SECRETS_DIR", str(folder))
    return folder


def test_secrets_come_from_files_named_like_the_variables(
        secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir / "RELAYFLOW_KAFKA_SASL_PASSWORD").write_text("kafka-pw-from-a-file\n")
    (secrets_dir / "relayflow_temporal_api_key").write_text("api-key-from-a-file\n")
    (secrets_dir / "unrelated").write_text("ignored")
    monkeypatch.setenv("RELAYFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("RELAYFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("RELAYFLOW_KAFKA_SASL_USERNAME", "bridge")
    settings = load_settings()
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "kafka-pw-from-a-file"
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "api-key-from-a-file"
    assert "from-a-file" not in repr(settings)
    monkeypatch.setenv("RELAYFLOW_TEMPORAL_API_KEY", "api-key-from-the-variable")
    overridden = load_settings().temporal_api_key
    assert overridden is not None
    assert overridden.get_secret_value() == "api-key-from-the-variable"


def test_without_a_secrets_dir_no_file_is_read(
        secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir / "RELAYFLOW_CODEC_SERVER_TOKEN").write_text("token")
    assert load_settings().codec_server_token is not None
    monkeypatch.delenv("RELAYFLOW_SECRETS_DIR")
    assert load_settings().codec_server_token is None


def test_a_secrets_dir_that_is_no_folder_stops_every_command_with_one_line(
        secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = secrets_dir / "missing"
    monkeypatch.setenv("RELAYFLOW_SECRETS_DIR", str(missing))
    with pytest.raises(SettingError, match=f"^RELAYFLOW_SECRETS_DIR: {missing} is not a folder$"):
        load_settings()
    result = CliRunner().invoke(app, ["dev", "status"])
    assert result.exit_code == 2
    assert result.output == f"relayflow: RELAYFLOW_SECRETS_DIR: {missing} is not a folder\n"


def test_a_secret_file_that_is_no_text_is_one_line_naming_it(secrets_dir: Path) -> None:
    (secrets_dir / "RELAYFLOW_CODEC_SERVER_TOKEN").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SettingError) as refused:
        load_settings()
    assert str(refused.value) == ("RELAYFLOW_SECRETS_DIR: the file of "
                                  "RELAYFLOW_CODEC_SERVER_TOKEN cannot be read: not UTF-8 text")
