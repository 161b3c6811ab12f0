"""The worker's Worker Deployment version, from settings (``worker_deployment``).

What the versions do on a real server is ``tests/integration/test_safe_deploys.py``.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.runtime.bootstrap import worker_deployment


def test_a_worker_without_a_deployment_is_unversioned() -> None:
    assert worker_deployment(Settings()) is None


def test_a_versioned_worker_pins_the_workflows_that_declare_no_behaviour() -> None:
    config = worker_deployment(Settings(worker_deployment_name="shop", worker_build_id="v7"))
    assert config is not None
    assert config.version == WorkerDeploymentVersion("shop", "v7")
    assert config.use_worker_versioning
    assert config.default_versioning_behavior is VersioningBehavior.PINNED


def test_a_worker_of_a_deployment_needs_its_build_id() -> None:
    with pytest.raises(ValueError, match="RELAYFLOW_WORKER_BUILD_ID"):
        worker_deployment(Settings(worker_deployment_name="shop"))


def test_a_build_id_without_its_deployment_is_refused() -> None:
    with pytest.raises(ValidationError, match="worker_deployment_name"):
        Settings(worker_build_id="v7")


def test_promoting_without_a_deployment_named_is_refused_before_connecting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYFLOW_WORKER_DEPLOYMENT_NAME", raising=False)
    # Nothing listens there: an attempt to connect would end otherwise (exit 3).
    result = CliRunner().invoke(app, ["deployment", "promote", "v7"],
                                env={"RELAYFLOW_TEMPORAL_ADDRESS": "127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "RELAYFLOW_WORKER_DEPLOYMENT_NAME" in result.output
