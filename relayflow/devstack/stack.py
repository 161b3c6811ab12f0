"""The whole dev stack: up, down, status, and waiting for services started elsewhere."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from relayflow.config.settings import Settings
from relayflow.devstack.kafka import (
    KAFKA,
    dev_secrets,
    kafka_answers,
    kafka_nodes,
    partition_counts,
    prepare_kafka,
    start_kafka,
    tooling_settings,
)
from relayflow.devstack.process import (
    READY_TIMEOUT,
    pid_file,
    port_open,
    recorded_pid,
    run_sync,
    service_dir,
    stop_service,
    wait_ready,
)
from relayflow.devstack.secure import MECHANISM
from relayflow.devstack.temporal import TEMPORAL, start_temporal, stop_temporal, temporal_answers
from relayflow.devstack.temporal_server import POSTGRES
from relayflow.runtime.clients import kafka_clients
from schemas.topics import Topic

__all__ = ["ServiceStatus", "StackStatus", "down", "status", "up", "wait_until_answering"]


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the stack.

    Attributes:
        name: ``kafka`` (``kafka-2``, ``kafka-3``: a cluster's other nodes), ``temporal``,
            or ``postgres`` (the real Temporal server's database).
        running: A process we started is alive and answers on its port.
        pid: Its pid when recorded.
        address: ``host:port`` clients use.
        log_file: Where it logs.
    """

    name: str
    running: bool
    pid: int | None
    address: str
    log_file: Path


@dataclass(frozen=True)
class StackStatus:
    """What runs where.

    Attributes:
        data_dir: The stack's folder.
        services: Kafka's nodes, then Temporal (and its PostgreSQL when it runs).
        temporal_ui_url: Web UI of the Temporal dev server; empty for the
            real server, which has none.
        topics: Topic name → partition count, when Kafka answers.
        kafka_security: How the broker is secured (no secrets), or None when
            it is plaintext.
        kafka_brokers: Kafka's nodes: 1, or 3 (replication factor 3,
            ``min.insync.replicas=2``).
    """

    data_dir: Path
    services: tuple[ServiceStatus, ...]
    temporal_ui_url: str
    topics: dict[str, int] = field(default_factory=dict)
    kafka_security: str | None = None
    kafka_brokers: int = 1


def wait_until_answering(settings: Settings, timeout: float = READY_TIMEOUT) -> None:
    """Block until the Kafka and Temporal the settings name both answer.

    For services started by something else (containers, a CI service): a
    port that accepts connections is not yet a broker that lists topics or a
    frontend that knows its namespace.

    Args:
        settings: Names the Kafka bootstrap servers and the Temporal address.
        timeout: Seconds to wait for each of them.

    Raises:
        StackError: One of them did not answer in time.
    """
    wait_ready(KAFKA, None, None, lambda: kafka_answers(settings), timeout)
    wait_ready(TEMPORAL, None, None, lambda: temporal_answers(settings), timeout)


def up(settings: Settings, topics: Iterable[Topic] | None = None) -> bool:
    """Bring the whole stack up (idempotent) and make sure every topic exists.

    Args:
        settings: Ports, data folder, versions; ``app``, the application.
        topics: The topics to create when missing (default: the configured
            application's, ``Application.all_topics()``).

    Returns:
        True when anything was started, False when everything was already running.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    started_kafka = start_kafka(settings)
    started_temporal = start_temporal(settings)
    prepare_kafka(settings, topics)
    return started_kafka or started_temporal


def down(settings: Settings, *, purge: bool = False) -> list[str]:
    """Stop what this stack started, by recorded pid.

    Args:
        settings: Supplies the data folder.
        purge: Also delete the data folder: topics, workflow history, and the
            local files applications keep there (the reference app's store, say).

    Returns:
        Names of the services that were stopped.
    """
    nodes = kafka_nodes(settings)
    stopped = [TEMPORAL] if stop_temporal(settings) else []
    stopped += [node.service for node in nodes if stop_service(settings, node.service)]
    if purge:
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return stopped


def status(settings: Settings) -> StackStatus:
    """What runs where; topics are listed when Kafka answers."""
    nodes = kafka_nodes(settings)
    services = []
    for name, port, log_file in (
        *((node.service, node.port, service_dir(settings, node.service) / "logs" / "server.log")
          for node in nodes),
        (TEMPORAL, settings.temporal_port, service_dir(settings, TEMPORAL) / "stdout.log"),
    ):
        pid = recorded_pid(settings, name)
        running = pid is not None and port_open(port)
        services.append(ServiceStatus(name, running, pid, f"127.0.0.1:{port}", log_file))
    postgres = recorded_pid(settings, POSTGRES)
    if postgres is not None:
        port = int(json.loads(pid_file(settings, POSTGRES).read_text())["port"])
        services.append(ServiceStatus(POSTGRES, port_open(port), postgres, f"127.0.0.1:{port}",
                                      service_dir(settings, POSTGRES) / "stdout.log"))
    topics: dict[str, int] = {}
    if any(service.running for service in services[:len(nodes)]):
        with contextlib.suppress(Exception):
            tooling = tooling_settings(settings)
            topics = run_sync(lambda: _describe(tooling))
    secrets = dev_secrets(settings)
    security = (f"SASL_SSL with {MECHANISM} (or PLAIN) and client certificates, ACLs on; CA, "
                f"certificates and per-principal settings (mode 0600) in {secrets.folder}"
                if secrets.exists() else None)
    ui = settings.temporal_ui_url if settings.temporal_dev_server == "dev" else ""
    return StackStatus(settings.data_dir.resolve(), tuple(services), ui, topics, security,
                       len(nodes))


async def _describe(settings: Settings) -> dict[str, int]:
    async with kafka_clients(settings).started_admin() as admin:
        names = [t for t in await admin.list_topics() if not t.startswith("__")]  # not internal
        return await partition_counts(admin, names)
