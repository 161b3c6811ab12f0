"""The worker's trusted approver keys: read from the registry file, re-read when it changes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from activities.outcomes import OutcomePublisher
from relayflow.application import WorkerResources
from relayflow.config import SettingError
from relayflow.config.settings import Settings
from relayflow.reference.activities.approval_policy import ApprovalKeys, ApprovalKeysRequest
from relayflow.reference.app import APP, reference_activities
from schemas.signatures import KeyRegistry, SigningKey
from tests.helpers.fakes import FakeProducer

REQUEST = ApprovalKeysRequest(approval_id="approval-A")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("RELAYFLOW_APPROVAL_KEYS", "RELAYFLOW_APPROVAL_SIGNATURES", "RELAYFLOW_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def keys_activity(data_dir: Path) -> Any:
    resources = WorkerResources(settings=Settings(data_dir=data_dir),
                                publisher=OutcomePublisher(FakeProducer(), APP.codec()))
    [found] = [a for a in reference_activities(resources)
               if getattr(a, "__name__", "") == "approval_keys"]
    return found


async def test_the_registry_is_read_again_when_it_changes(env: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    first, second = SigningKey.generate("k1", ["g"]), SigningKey.generate("k2", ["g"])
    registry = tmp_path / "keys.json"
    registry.write_text(KeyRegistry(keys=(first.trusted(),)).model_dump_json())
    env.setenv("RELAYFLOW_APPROVAL_KEYS", str(registry))
    approval_keys = keys_activity(tmp_path)
    answer: ApprovalKeys = await approval_keys(REQUEST)
    assert (answer.required, [k.key_id for k in answer.registry.keys]) == (True, ["k1"])
    registry.write_text(KeyRegistry(keys=(second.trusted(), first.trusted())).model_dump_json())
    answer = await approval_keys(REQUEST)
    assert [k.key_id for k in answer.registry.keys] == ["k2", "k1"]  # no restart needed


async def test_the_dev_registry_is_the_default(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = SigningKey.generate("dev", ["g"])
    (tmp_path / "approval-keys.json").write_text(
        KeyRegistry(keys=(key.trusted(),)).model_dump_json())
    assert (await keys_activity(tmp_path)(REQUEST)).registry.find("dev") == key.trusted()


def test_a_bad_registry_stops_the_worker_naming_the_variable(env: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    registry = tmp_path / "keys.json"
    registry.write_text('{"keys": [{"key_id": "k"}]}')
    env.setenv("RELAYFLOW_APPROVAL_KEYS", str(registry))
    with pytest.raises(SettingError, match=r"^RELAYFLOW_APPROVAL_KEYS: .*not a key registry"):
        keys_activity(tmp_path)


async def test_signatures_off_is_said_loudly_and_answered(
        env: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env.setenv("RELAYFLOW_APPROVAL_SIGNATURES", "off")
    with caplog.at_level(logging.WARNING):
        approval_keys = keys_activity(tmp_path)
    assert "UNSIGNED APPROVAL DECISIONS COUNT" in caplog.text
    assert (await approval_keys(REQUEST)).required is False


def test_no_key_at_all_is_said_at_start(env: pytest.MonkeyPatch, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        keys_activity(tmp_path)
    assert "every approval decision will be refused" in caplog.text
