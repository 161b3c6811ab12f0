"""The dev stack's Apache Kafka: jars from Maven Central, one or three KRaft nodes, the topics.

The broker jars come from Maven Central (``mvn dependency:copy-dependencies``
on a throwaway pom), cached by version; each node runs on the machine's Java
17, the way ``bin/kafka-server-start.sh`` runs it, and is broker and
controller at once. One node (the default) is formatted ``--standalone``.
Three (``relayflow dev up --brokers 3``) share one cluster id and are
formatted with the same ``--initial-controllers`` (a 3-voter quorum), each in
its own folder with its own node id and ports; their layout is recorded in
``<data_dir>/kafka/cluster.json``, so later ``up``/``status``/``down`` find every
node without the flag. Topics then get replication factor 3 and
``min.insync.replicas=2``: one node lost loses nothing and keeps serving.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import functools
import json
import logging
import shutil
import subprocess
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from relayflow.application import load_application
from relayflow.config.settings import Settings
from relayflow.devstack.process import (
    STOP_GRACE,
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
from relayflow.devstack.secure import (
    ADMIN,
    DevSecrets,
    acl_plan,
    create_acls,
    input_producers,
    principals,
)
from relayflow.runtime.clients import kafka_clients
from schemas.topics import Topic

__all__ = ["KAFKA", "KafkaNode", "app_topics", "bootstrap_servers", "dev_secrets",
           "ensure_topics", "fetch_kafka", "kafka_answers", "kafka_nodes", "new_cluster_id",
           "partition_counts", "prepare_kafka", "render_server_properties", "replication_factor",
           "start_kafka", "stop_kafka", "tooling_settings"]

log = logging.getLogger(__name__)

KAFKA = "kafka"
_CLUSTER_FILE = "cluster.json"


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One KRaft node (broker and controller) of the dev Kafka.

    Attributes:
        node_id: Its ``node.id`` (the first node is 1).
        port: Its client listener.
        controller_port: Its controller listener (a voter of the quorum).
        advertised_port: The port clients are told to use.
        directory_id: Its metadata folder's id in the initial voter set (a
            cluster's nodes only; "" for a single node).
    """

    node_id: int
    port: int
    controller_port: int
    advertised_port: int
    directory_id: str = ""

    @property
    def service(self) -> str:
        """Its name in the stack's records: ``kafka`` for the first node, ``kafka-<id>`` after."""
        return KAFKA if self.node_id == 1 else f"{KAFKA}-{self.node_id}"

    @property
    def address(self) -> str:
        """``host:port`` clients use."""
        return f"127.0.0.1:{self.advertised_port}"


def app_topics(settings: Settings) -> tuple[Topic, ...]:
    """Every topic of the configured application (``settings.app``): its own, DLQs, parked keys."""
    return load_application(settings.app).all_topics()


def kafka_nodes(settings: Settings) -> tuple[KafkaNode, ...]:
    """The nodes of the dev Kafka in ``settings.data_dir``.

    A cluster's nodes as recorded when it was formatted (ports included: the
    quorum is bound to them); otherwise what the settings ask for
    (``kafka_dev_brokers``, ``kafka_dev_node_ports``), unless a single node
    was already formatted there.
    """
    home = service_dir(settings, KAFKA)
    layout = home / _CLUSTER_FILE
    if layout.exists():
        return tuple(KafkaNode(n["node_id"], n["port"], n["controller_port"], n["port"],
                               n["directory_id"])
                     for n in json.loads(layout.read_text())["nodes"])
    if settings.kafka_dev_brokers == 1 or (home / "data" / "meta.properties").exists():
        return (_single_node(settings),)
    return tuple(KafkaNode(n, port, controller, port)
                 for n, (port, controller) in enumerate(settings.kafka_dev_ports, start=1))


def _single_node(settings: Settings) -> KafkaNode:
    return KafkaNode(1, settings.kafka_port, settings.kafka_controller_port,
                     settings.kafka_advertised_port or settings.kafka_port)


def replication_factor(settings: Settings) -> int:
    """Replication factor of the dev Kafka's topics: its node count (1 or 3)."""
    return len(kafka_nodes(settings))


def bootstrap_servers(settings: Settings) -> str:
    """Every node of the dev Kafka, as ``RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS`` lists them."""
    return ",".join(node.address for node in kafka_nodes(settings))


def _node_home(settings: Settings, node: KafkaNode) -> Path:
    return service_dir(settings, node.service)


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
    """``settings`` as the dev stack's own tooling connects.

    As ``admin`` on a secured broker; to every node of a cluster (any live one will do).
    """
    secrets = dev_secrets(settings)
    tooling = secrets.client_settings(settings, ADMIN) if secrets.exists() else settings
    if len(kafka_nodes(settings)) > 1:
        tooling = tooling.model_copy(
            update={"kafka_bootstrap_servers": bootstrap_servers(settings)})
    return tooling


def render_server_properties(settings: Settings, log_dirs: Path,
                             secrets: DevSecrets | None = None, *,
                             node: KafkaNode | None = None,
                             cluster: Sequence[KafkaNode] = ()) -> str:
    """``server.properties`` for one KRaft node that is broker and controller.

    Args:
        settings: Supplies the ports of a single node.
        log_dirs: Where the broker keeps its partitions.
        secrets: Secure the client listener with these (SASL_SSL, ACLs); None: plaintext.
        node: The node (default: the single node of ``settings``).
        cluster: Every node of a cluster (``node`` among them): the quorum's
            voters, and three replicas of every partition.

    Returns:
        The file's text.
    """
    node = node or _single_node(settings)
    port, ctl = node.port, node.controller_port
    voters = cluster or (node,)
    replicas = str(len(voters))
    # Acknowledged (acks=all) means on two replicas at least, once there are three.
    in_sync = "2" if len(voters) >= 3 else "1"  # noqa: PLR2004 - 3 replicas: 2 must ack
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.bootstrap.servers":
            ",".join(f"127.0.0.1:{voter.controller_port}" for voter in voters),
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctl}",
        # Clients connect to what the broker advertises, so a proxy in front of it
        # is only in the path when it is the advertised address.
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.advertised_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": "3",
        "default.replication.factor": replicas,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        "min.insync.replicas": in_sync,
        "auto.create.topics.enable": "false",
        # Tests join and leave groups constantly; don't wait 3s for more members.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    if len(voters) > 1:
        # A dead node is fenced (its partitions led elsewhere, dropped from the ISRs)
        # within seconds rather than the default 9.
        props |= {"broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "1000",
                  # Kafka's default, spelled out: a lagging replica never becomes leader.
                  "unclean.leader.election.enable": "false"}
    if secrets is not None:
        props |= secrets.server_properties(port, ctl, node.advertised_port)
    return "".join(f"{k}={v}\n" for k, v in props.items())


async def kafka_answers(settings: Settings) -> bool:
    """True once the broker lists its topics (raises while it does not answer)."""
    with quiet("aiokafka"):
        async with kafka_clients(settings).started_admin(request_timeout_ms=3000) as admin:
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


def start_kafka(settings: Settings, node_ids: Collection[int] | None = None) -> bool:
    """Start every node of the dev Kafka that is not running; wait until each answers.

    Nodes already running are reused, so after one node of a cluster died
    this starts that one alone.

    Args:
        settings: The dev stack's settings.
        node_ids: Start only these nodes of a cluster (``KafkaNode.node_id``);
            default every one.

    Returns:
        True when a node was started, False when every node was already running.
    """
    home = service_dir(settings, KAFKA)
    secrets = dev_secrets(settings)
    formatted = (home / "data" / "meta.properties").exists()
    if formatted and settings.kafka_dev_secure and not secrets.exists():
        raise StackError(f"the Kafka storage in {home} was formatted without --secure; "
                         "`relayflow dev down --purge` first to start it secured")
    nodes = kafka_nodes(settings)
    if formatted and len(nodes) < settings.kafka_dev_brokers:
        raise StackError(f"the Kafka storage in {home} was formatted for one broker; "
                         f"`relayflow dev down --purge` first to start "
                         f"{settings.kafka_dev_brokers}")
    stopped = tuple(node for node in nodes if recorded_pid(settings, node.service) is None
                    and (node_ids is None or node.node_id in node_ids))
    if not stopped:
        return False
    libs = fetch_kafka(settings)
    java = shutil.which("java")
    if java is None:
        raise StackError("java (17+) is needed to run the Kafka broker")
    secure = secrets.exists() or (settings.kafka_dev_secure and not formatted)
    if secure and not secrets.exists():
        secrets.generate(principals(input_producers(load_application(settings.app))))
    cluster: tuple[KafkaNode, ...] = ()
    cluster_id = new_cluster_id()  # a single node is formatted once, with a new one
    if len(nodes) > 1:
        layout = home / _CLUSTER_FILE
        if not layout.exists():  # the voters' folder ids, recorded before any node is formatted
            nodes = tuple(replace(n, directory_id=new_cluster_id()) for n in nodes)
            home.mkdir(parents=True, exist_ok=True)
            layout.write_text(json.dumps({"cluster_id": cluster_id, "nodes": [
                {"node_id": n.node_id, "port": n.port, "controller_port": n.controller_port,
                 "directory_id": n.directory_id} for n in nodes]}, indent=2))
            stopped = nodes  # a new cluster: every node is formatted now
        cluster, cluster_id = nodes, json.loads(layout.read_text())["cluster_id"]
    for node in stopped:
        check_port_free(node.service, node.port)
        check_port_free(node.service, node.controller_port)
    classpath, node_secrets = f"{libs}/*", secrets if secure else None
    # Each node's storage is formatted by a JVM run of its own: all of them at once.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(stopped)) as pool:
        list(pool.map(lambda node: _prepare_node(settings, node, cluster, java, classpath,
                                                 node_secrets, cluster_id), stopped))
    started = [(node, _start_node(settings, node, cluster, java, classpath)) for node in stopped]
    tooling = tooling_settings(settings)
    for node, pid in started:
        # Each node answers itself; a cluster's answer once a majority of voters runs.
        probe = tooling if not cluster else tooling.model_copy(
            update={"kafka_bootstrap_servers": node.address})
        wait_ready(node.service, pid, _node_home(settings, node) / "logs" / "server.log",
                   functools.partial(kafka_answers, probe))
    return True


def _prepare_node(settings: Settings, node: KafkaNode, cluster: Sequence[KafkaNode], java: str,
                  classpath: str, secrets: DevSecrets | None, cluster_id: str) -> None:
    """Write a node's configuration, and format its storage the first time."""
    home = _node_home(settings, node)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    properties.touch(mode=0o600)  # a secured broker's file holds its own SCRAM password
    properties.chmod(0o600)
    properties.write_text(render_server_properties(settings, home / "data", secrets,
                                                   node=node, cluster=cluster))
    log4j = home / "log4j2.xml"
    log4j.write_text(resources.files("relayflow.devstack").joinpath("log4j2.xml").read_text())
    if not (home / "data" / "meta.properties").exists():
        voters = ["--standalone"] if not cluster else ["--initial-controllers", ",".join(
            f"{v.node_id}@127.0.0.1:{v.controller_port}:{v.directory_id}" for v in cluster)]
        result = subprocess.run(  # noqa: S603
            # A run of a second or two: the JIT's first tier and the serial GC start it soonest.
            [java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", classpath,
             "kafka.tools.StorageTool", "format", *voters,
             "-t", cluster_id, "-c", str(properties),
             *(secrets.scram_arguments() if secrets else [])],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            # The output may echo the --add-scram arguments: never show their passwords.
            output = result.stdout + result.stderr
            for password in secrets.users().values() if secrets else ():
                output = output.replace(password, "******")
            raise StackError(f"formatting Kafka storage failed:\n{output}")


def _start_node(settings: Settings, node: KafkaNode, cluster: Sequence[KafkaNode], java: str,
                classpath: str) -> int:
    """Start a prepared node (``_prepare_node``); its pid."""
    home = _node_home(settings, node)
    log4j = home / "log4j2.xml"
    properties = home / "server.properties"
    heap = "-Xmx384m" if cluster else "-Xmx512m"  # three on one machine: a little less each
    argv = [java, "-Xms256m" if not cluster else "-Xms128m", heap, "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={home / 'logs'}", f"-Dlog4j2.configurationFile={log4j}",
            "-cp", classpath, "kafka.Kafka", str(properties)]
    return spawn(settings, node.service, argv, node.port, str(properties), home)


def prepare_kafka(settings: Settings, topics: Iterable[Topic] | None = None) -> dict[str, int]:
    """Create the missing topics of ``topics`` and, on a secured broker, the principals' ACLs.

    Args:
        settings: The dev stack's settings (``kafka_consumer_group`` starts the
            names of the bridge's groups in the ACLs; ``app`` declares the
            producers of its input topics, ``InputProducers``).
        topics: The application's topics (default: the configured
            application's, ``Application.all_topics()``).

    Returns:
        Topic name → partition count of each of ``topics``.
    """
    wanted = app_topics(settings) if topics is None else tuple(topics)
    tooling = tooling_settings(settings)
    counts = ensure_topics(tooling, wanted)
    if dev_secrets(settings).exists():
        plan = acl_plan(wanted, settings.kafka_consumer_group,
                        input_producers(load_application(settings.app)))

        async def grant() -> None:
            async with kafka_clients(tooling).started_admin() as admin:
                await create_acls(admin, plan)

        run_sync(grant)
    return counts


def stop_kafka(settings: Settings, *, grace: float = STOP_GRACE) -> bool:
    """Stop every node this stack started (data kept). True if one was running.

    Args:
        settings: The dev stack's settings.
        grace: Seconds each node may take to shut down cleanly before it is
            killed (``STOP_GRACE`` by default); 0 kills them at once, for a
            throwaway cluster whose data nobody reads again.
    """
    nodes = kafka_nodes(settings)
    # All at once: a node stopping alone waits for the others to take its partitions over.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        return any(pool.map(lambda node: stop_service(settings, node.service, grace=grace), nodes))


def ensure_topics(settings: Settings, topics: Iterable[Topic] | None = None,
                  replicas: int | None = None) -> dict[str, int]:
    """Create every topic of ``topics`` that is missing; existing ones are left alone.

    Args:
        settings: Where Kafka is.
        topics: The topics (default: the configured application's, with DLQs and
            parked keys, ``Application.all_topics()``).
        replicas: Replication factor of the topics created (default: the dev
            stack's, ``replication_factor``: 1, or 3 on a cluster).

    Returns:
        Topic name → partition count of each of ``topics``, as the broker reports them.
    """
    from aiokafka.admin import NewTopic  # noqa: PLC0415
    from aiokafka.errors import TopicAlreadyExistsError  # noqa: PLC0415

    wanted = list(app_topics(settings) if topics is None else topics)
    factor = replicas or replication_factor(settings)

    async def create() -> dict[str, int]:
        async with kafka_clients(settings).started_admin() as admin:
            existing = set(await admin.list_topics())
            missing = [NewTopic(t.name, t.partitions, factor, topic_configs=t.configs)
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
