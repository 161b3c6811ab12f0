"""``dev up --temporal server``: the real Temporal server on PostgreSQL, several shards.

The server is built from ``go.temporal.io/server`` (minutes, cold), so these
tests run where ``make temporal-server`` has built it and are skipped
elsewhere; ``make test`` does not build it.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.workflowservice.v1 import GetClusterInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.process import run_sync
from relayflow.devstack.temporal_server import (
    HISTORY_SHARDS,
    TEMPORAL_SERVER_VERSION,
    postgres_binaries,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def _built(settings: Settings) -> bool:
    home = settings.cache_dir / f"temporal-server-{TEMPORAL_SERVER_VERSION}"
    try:
        postgres_binaries()
    except devstack.StackError:
        return False
    return (home / "server").exists() and (home / "sql").exists()


@workflow.defn(name="RealServerEcho")
class Echo:
    """Returns its argument: a full round trip through the history and matching services."""

    @workflow.run
    async def run(self, text: str) -> str:
        """Echo."""
        return text


@pytest.fixture
def real(tmp_path: Path) -> Iterator[Settings]:
    """A stack folder the ``postgres`` user can reach (pytest's are root's only), free ports."""
    if not _built(Settings()):
        pytest.skip("the real Temporal server is not built: make temporal-server")
    folder = Path(tempfile.mkdtemp(prefix=".relayflow-realserver-", dir=ROOT))
    folder.chmod(0o711)  # mkdtemp's folder is root's only; postgres must pass through it
    port = free_port()
    settings = Settings(data_dir=folder / "stack", temporal_dev_server="server",
                        temporal_port=port, temporal_address=f"127.0.0.1:{port}")
    settings.data_dir.mkdir(parents=True)
    try:
        yield settings
    finally:
        devstack.stop_temporal(settings)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_real_server_runs_workflows_on_postgresql_with_several_shards(
        real: Settings) -> None:
    assert devstack.start_temporal(real) is True
    assert devstack.start_temporal(real) is False  # reused
    state = devstack.status(real)
    assert {s.name: s.running for s in state.services[-2:]} == {"temporal": True,
                                                               "postgres": True}
    assert state.temporal_ui_url == ""  # no web UI

    async def round_trip(workflow_id: str) -> tuple[int, str]:
        client = await Client.connect(real.temporal_address, namespace=real.temporal_namespace)
        info = await client.workflow_service.get_cluster_info(GetClusterInfoRequest())
        async with Worker(client, task_queue="real-server", workflows=[Echo],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            result = await client.execute_workflow(Echo.run, "hello", id=workflow_id,
                                                   task_queue="real-server")
        return info.history_shard_count, result

    workflow_id = f"echo-{uuid.uuid4().hex[:8]}"
    assert run_sync(lambda: round_trip(workflow_id)) == (HISTORY_SHARDS, "hello")

    # Stopped and started again, the history is still there: it lives in PostgreSQL.
    assert devstack.stop_temporal(real) is True
    assert not any(s.running for s in devstack.status(real).services if s.name == "temporal")
    assert [s.name for s in devstack.status(real).services].count("postgres") == 0
    assert devstack.start_temporal(real) is True

    async def status() -> WorkflowExecutionStatus | None:
        client = await Client.connect(real.temporal_address, namespace=real.temporal_namespace)
        return (await client.get_workflow_handle(workflow_id).describe()).status

    assert run_sync(status) == WorkflowExecutionStatus.COMPLETED
