"""The dev stack's Apache Kafka broker: jars from Maven Central, one KRaft node, the topics.

The broker jars come from Maven Central (``mvn dependency:copy-dependencies``
on a throwaway pom), cached by version; storage is formatted once for a single
KRaft node (broker + controller) and the broker runs on the machine's Java 17,
the way ``bin/kafka-server-start.sh`` runs it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from relayflow.devstack.process import (
    StackError,
    build_once,
    check_port_free,
    quiet,
    recorded_pid,
    run_sync,
    service_dir,
    spawn,
    stop_service,
    wait_ready,
)
from relayflow.devstack.secure import ADMIN, DevSecrets, acl_plan, create_acls
from relayflow.kafka_clients import KafkaClients
from relayflow.settings import Settings
from schemas.topics import TOPICS, Topic

__all__ = ["KAFKA", "dev_secrets", "ensure_topics", "fetch_kafka", "kafka_answers",
           "new_cluster_id", "partition_counts", "prepare_kafka", "render_server_properties",
           "start_kafka", "stop_kafka", "tooling_settings"]

log = logging.getLogger(__name__)

KAFKA = "kafka"


def fetch_kafka(settings: Settings) -> Path:
    """Resolve the Kafka broker jars from Maven Central into the cache, once per version.

    Args:
        settings: Supplies ``kafka_version`` and ``cache_dir``.

    Returns:
        The folder holding every jar of the broker's classpath.
    """
    home = settings.cache_dir / f"kafka-{settings.kafka_version}"
    libs, marker = home / "libs", home / ".complete"
    if marker.exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    template = resources.files("relayflow.devstack").joinpath("kafka-pom.xml").read_text()
    (home / "pom.xml").write_text(template.replace("@KAFKA_VERSION@", settings.kafka_version))
    shutil.rmtree(libs, ignore_errors=True)
    log.info("resolving Apache Kafka %s from Maven Central", settings.kafka_version)
    build_once("mvn", ["-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
               purpose=f"resolve the Kafka {settings.kafka_version} jars from Maven Central",
               cwd=home)
    marker.write_text(settings.kafka_version)
    return libs


def dev_secrets(settings: Settings) -> DevSecrets:
    """The secrets folder of the dev broker in ``settings.data_dir`` (it may not exist)."""
    return DevSecrets(service_dir(settings, KAFKA) / "secrets")


def tooling_settings(settings: Settings) -> Settings:
    """``settings`` as the dev stack's own tooling connects: as ``admin`` on a secured broker."""
    secrets = dev_secrets(settings)
    return secrets.client_settings(settings, ADMIN) if secrets.exists() else settings


def render_server_properties(settings: Settings, log_dirs: Path,
                             secrets: DevSecrets | None = None) -> str:
    """``server.properties`` for one KRaft node that is broker and controller.

    Args:
        settings: Supplies the ports.
        log_dirs: Where the broker keeps its partitions.
        secrets: Secure the client listener with these (SASL_SSL, ACLs); None: plaintext.

    Returns:
        The file's text.
    """
    port, ctl = settings.kafka_port, settings.kafka_controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{ctl}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctl}",
        # Clients connect to what the broker advertises, so a proxy in front of it
        # is only in the path when it is the advertised address.
        "advertised.listeners":
            f"PLAINTEXT://127.0.0.1:{settings.kafka_advertised_port or port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        # Tests join and leave groups constantly; don't wait 3s for more members.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    if secrets is not None:
        props |= secrets.server_properties(port, ctl, settings.kafka_advertised_port or port)
    return "".join(f"{k}={v}\n" for k, v in props.items())


async def kafka_answers(settings: Settings) -> bool:
    """True once the broker lists its topics (raises while it does not answer)."""
    with quiet("aiokafka"):
        async with KafkaClients(settings).started_admin(request_timeout_ms=3000) as admin:
            await admin.list_topics()
    return True


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, URL-safe base64, unpadded.

    Like Kafka's own ``Uuid.randomUuid``, ids starting with ``-`` are redrawn:
    the storage tool's argument parser would read one as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start_kafka(settings: Settings) -> bool:
    """Start the broker unless ours is already running; wait until it answers.

    Returns:
        True when a broker was started, False when a running one was reused.
    """
    home = service_dir(settings, KAFKA)
    secrets = dev_secrets(settings)
    formatted = (home / "data" / "meta.properties").exists()
    if formatted and settings.kafka_dev_secure and not secrets.exists():
        raise StackError(f"the Kafka storage in {home} was formatted without --secure; "
                         "`relayflow dev down --purge` first to start it secured")
    if recorded_pid(settings, KAFKA) is not None:
        return False
    check_port_free(KAFKA, settings.kafka_port)
    check_port_free(KAFKA, settings.kafka_controller_port)
    libs = fetch_kafka(settings)
    java = shutil.which("java")
    if java is None:
        raise StackError("java (17+) is needed to run the Kafka broker")
    (home / "logs").mkdir(parents=True, exist_ok=True)
    secure = secrets.exists() or (settings.kafka_dev_secure and not formatted)
    if secure and not secrets.exists():
        secrets.generate()
    properties = home / "server.properties"
    properties.touch(mode=0o600)  # a secured broker's file holds its own SCRAM password
    properties.chmod(0o600)
    properties.write_text(render_server_properties(settings, home / "data",
                                                   secrets if secure else None))
    log4j = home / "log4j2.xml"
    log4j.write_text(resources.files("relayflow.devstack").joinpath("log4j2.xml").read_text())
    classpath = f"{libs}/*"
    if not (home / "data" / "meta.properties").exists():
        cluster_id = new_cluster_id()
        result = subprocess.run(  # noqa: S603
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone",
             "-t", cluster_id, "-c", str(properties),
             *(secrets.scram_arguments() if secure else [])],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            # The output may echo the --add-scram arguments: never show their passwords.
            output = result.stdout + result.stderr
            for principal in secrets.users() if secure else {}:
                output = output.replace(secrets.password(principal), "******")
            raise StackError(f"formatting Kafka storage failed:\n{output}")
    argv = [java, "-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={home / 'logs'}", f"-Dlog4j2.configurationFile={log4j}",
            "-cp", classpath, "kafka.Kafka", str(properties)]
    pid = spawn(settings, KAFKA, argv, settings.kafka_port, str(properties), home)
    tooling = tooling_settings(settings)
    wait_ready(KAFKA, pid, home / "logs" / "server.log", lambda: kafka_answers(tooling))
    return True


def prepare_kafka(settings: Settings, topics: Iterable[Topic] = TOPICS) -> dict[str, int]:
    """Create the missing topics of ``topics`` and, on a secured broker, the principals' ACLs.

    Args:
        settings: The dev stack's settings (``kafka_consumer_group`` starts the
            names of the bridge's groups in the ACLs).
        topics: The application's topics (``Application.all_topics()``).

    Returns:
        Topic name → partition count of each of ``topics``.
    """
    wanted = tuple(topics)
    tooling = tooling_settings(settings)
    counts = ensure_topics(tooling, wanted)
    if dev_secrets(settings).exists():
        plan = acl_plan(wanted, settings.kafka_consumer_group)

        async def grant() -> None:
            async with KafkaClients(tooling).started_admin() as admin:
                await create_acls(admin, plan)

        run_sync(grant)
    return counts


def stop_kafka(settings: Settings) -> bool:
    """Stop the broker this stack started (data kept). True if one was running."""
    return stop_service(settings, KAFKA)


def ensure_topics(settings: Settings, topics: Iterable[Topic] = TOPICS) -> dict[str, int]:
    """Create every topic of ``topics`` that is missing; existing ones are left alone.

    Args:
        settings: Where Kafka is.
        topics: The topics (default: relayflow's own application's, with DLQs and
            parked keys; an application's are ``Application.all_topics()``).

    Returns:
        Topic name → partition count of each of ``topics``, as the broker reports them.
    """
    from aiokafka.admin import NewTopic  # noqa: PLC0415
    from aiokafka.errors import TopicAlreadyExistsError  # noqa: PLC0415

    wanted = list(topics)

    async def create() -> dict[str, int]:
        async with KafkaClients(settings).started_admin() as admin:
            existing = set(await admin.list_topics())
            missing = [NewTopic(t.name, t.partitions, 1, topic_configs=t.configs)
                       for t in wanted if t.name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
            return await partition_counts(admin, [t.name for t in wanted])

    return run_sync(create)


async def partition_counts(admin: Any, names: Iterable[str]) -> dict[str, int]:
    """Partition count of each topic of ``names`` that exists, through a started admin."""
    described = await admin.describe_topics(list(names))
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
