"""The real Temporal server for the dev stack, on a private PostgreSQL cluster.

``relayflow dev up --temporal server`` (``RELAYFLOW_TEMPORAL_DEV_SERVER=server``)
starts this instead of ``temporal server start-dev``: the server production
runs (``go.temporal.io/server``, ``cmd/server``), built once with Go from the
Go module proxy into the cache like Toxiproxy, with its frontend, history,
matching and worker services in one process, ``HISTORY_SHARDS`` history shards,
and SQL persistence and visibility in PostgreSQL from Debian.

PostgreSQL is a cluster of the stack's own (``initdb`` into the stack's data
folder, ``postgres`` on a port of its own, its socket in its own folder),
never the machine's: it refuses to run as root, so as root it runs as the
``postgres`` user the Debian package creates. Its schema is set up once with
the server's own ``temporal-sql-tool`` (``cmd/tools/sql``, built beside the
server) from the schema embedded in it; the namespace is registered once the
frontend answers. The internal ports (PostgreSQL, the services' gRPC and
membership ports) are chosen free at the first start and kept in
``ports.json``. It has no web UI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from relayflow.config.settings import Settings
from relayflow.devstack.process import (
    StackError,
    check_port_free,
    free_port,
    go_install,
    port_open,
    recorded_pid,
    service_dir,
    spawn,
    stop_service,
    wait_ready,
)

__all__ = ["HISTORY_SHARDS", "POSTGRES", "TEMPORAL_SERVER_MODULE", "TEMPORAL_SERVER_VERSION",
           "fetch_temporal_server", "postgres_binaries", "start_real_server", "stop_postgres"]

TEMPORAL_SERVER_MODULE = "go.temporal.io/server"
TEMPORAL_SERVER_VERSION = "v1.32.1"
"""v1.32.2 asks for Go 1.26.10; this one builds on the machine's Go 1.26.8."""
HISTORY_SHARDS = 4
"""Fixed when the cluster is first started: a new stack is needed to change it."""
POSTGRES = "postgres"
_DB_USER = "temporal"
_DATABASES = {"temporal": "postgresql/v12/temporal",
              "temporal_visibility": "postgresql/v12/visibility"}
_SERVICES = ("frontend", "history", "matching", "worker")
# What `temporal server start-dev` turns on and an application of ours uses.
_DYNAMIC_CONFIG = """\
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
system.enableEagerWorkflowStart:
  - value: true
frontend.enableUpdateWorkflowExecution:
  - value: true
frontend.enableUpdateWorkflowExecutionAsyncAccepted:
  - value: true
"""


def fetch_temporal_server(settings: Settings) -> tuple[Path, Path]:
    """Build the server and its ``temporal-sql-tool`` with ``go install``, once per version.

    Returns:
        The server binary and the SQL tool.

    Raises:
        StackError: Go is missing or the build failed.
    """
    server, tool = go_install(
        settings, "temporal-server", TEMPORAL_SERVER_VERSION,
        [f"{TEMPORAL_SERVER_MODULE}/cmd/server", f"{TEMPORAL_SERVER_MODULE}/cmd/tools/sql"],
        purpose=f"build the Temporal server {TEMPORAL_SERVER_VERSION} from the Go "
                "module proxy (a few minutes, once)")
    return server, tool


def postgres_binaries() -> Path:
    """The newest PostgreSQL server folder from Debian (``initdb``, ``postgres``).

    Raises:
        StackError: PostgreSQL is not installed (``make temporal-server`` installs it).
    """
    found = sorted((path for path in Path("/usr/lib/postgresql").glob("*/bin/postgres")
                    if path.parent.parent.name.isdigit()),
                   key=lambda path: int(path.parent.parent.name))
    if not found:
        raise StackError("PostgreSQL is missing: `apt-get install -y postgresql` "
                         "(`make temporal-server` does it)")
    return found[-1].parent


def _owner() -> str | None:
    """The user PostgreSQL runs as: ``postgres`` when we are root (it refuses root)."""
    return POSTGRES if os.geteuid() == 0 else None


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(home: Path) -> dict[str, int]:
    """The internal ports, chosen free once and kept, so a restart finds its own members."""
    path = home / "ports.json"
    if path.exists():
        kept: dict[str, int] = json.loads(path.read_text())
        return kept
    ports = {POSTGRES: free_port(), **{f"{s}-grpc": free_port() for s in _SERVICES}}
    # The SQL stores keep membership ports as a signed smallint: below 32768, where the
    # kernel hands out no ephemeral port.
    candidates = (port for port in range(20000 + os.getpid() % 12000, 32768)
                  if _can_bind(port))
    ports |= {f"{s}-membership": next(candidates) for s in _SERVICES}
    path.write_text(json.dumps(ports, indent=2))
    return ports


def _start_postgres(settings: Settings, home: Path, port: int) -> None:
    """Start the stack's PostgreSQL cluster (``initdb`` first, once) unless it runs."""
    if recorded_pid(settings, POSTGRES) is not None:
        return
    check_port_free(POSTGRES, port)
    binaries, owner = postgres_binaries(), _owner()
    data = home / "data"
    if not (data / "PG_VERSION").exists():
        home.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            shutil.chown(home, owner, owner)
            # Its owner must pass through the stack's folder (search, not read, permission).
            stack = home.parent
            stack.chmod(stack.stat().st_mode | stat.S_IXOTH)
        result = subprocess.run(  # noqa: S603 - argv built from our own paths
            [str(binaries / "initdb"), "-D", str(data), "-U", _DB_USER, "--auth=trust",
             "-E", "UTF8", "--no-instructions"],
            user=owner, group=owner, extra_groups=None if owner is None else [],
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"initdb failed (every folder above {home} must let the "
                             f"{owner or 'current'} user pass):\n{result.stdout}{result.stderr}")
    # Durable against a crash of PostgreSQL, not of the machine: the same promise as the
    # dev server's SQLite (WAL, synchronous=normal), so the two compare.
    argv = [str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
            "-k", str(home), "-c", "synchronous_commit=off", "-c", "max_connections=200"]
    pid = spawn(settings, POSTGRES, argv, port, str(data), home, user=owner)

    async def answers() -> bool:
        return port_open(port)

    wait_ready(POSTGRES, pid, home / "stdout.log", answers)


def _sql_tool(tool: Path, port: int, database: str, *args: str) -> None:
    result = subprocess.run(  # noqa: S603 - argv built from our own paths
        [str(tool), "--ep", "127.0.0.1", "-p", str(port), "-u", _DB_USER, "--pl", "postgres12",
         "--db", database, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"temporal-sql-tool {' '.join(args)} on {database} failed:\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")


def _set_up_schema(tool: Path, home: Path, port: int) -> None:
    """Create both databases and their schema (embedded in the tool), once per version."""
    done = home / f"schema-{TEMPORAL_SERVER_VERSION}"
    if done.exists():
        return
    fresh = not any(home.glob("schema-*"))
    for database, schema in _DATABASES.items():
        if fresh:
            _sql_tool(tool, port, database, "create-database")
            _sql_tool(tool, port, database, "setup-schema", "-v", "0.0")
        _sql_tool(tool, port, database, "update-schema", "--schema-name", schema)
    done.touch()


def _config(settings: Settings, home: Path, ports: dict[str, int]) -> Path:
    """Write the server's configuration (YAML; JSON is YAML) and its dynamic config."""
    dynamic = home / "dynamicconfig.yaml"
    dynamic.write_text(_DYNAMIC_CONFIG)

    def store(database: str, connections: int) -> dict[str, object]:
        return {"sql": {"pluginName": "postgres12", "databaseName": database,
                        "connectAddr": f"127.0.0.1:{ports[POSTGRES]}", "connectProtocol": "tcp",
                        "user": _DB_USER, "password": "", "maxConns": connections,
                        "maxIdleConns": connections, "maxConnLifetime": "1h"}}

    def rpc(service: str) -> dict[str, object]:
        grpc = settings.temporal_port if service == "frontend" else ports[f"{service}-grpc"]
        return {"rpc": {"grpcPort": grpc, "membershipPort": ports[f"{service}-membership"],
                        "bindOnIP": "127.0.0.1"}}

    config = {
        "log": {"stdout": True, "level": "warn"},
        "persistence": {
            "defaultStore": "default", "visibilityStore": "visibility",
            "numHistoryShards": HISTORY_SHARDS,
            "datastores": {"default": store("temporal", 20),
                           "visibility": store("temporal_visibility", 5)}},
        "global": {"membership": {"maxJoinDuration": "30s", "broadcastAddress": "127.0.0.1"}},
        "services": {service: rpc(service) for service in _SERVICES},
        "clusterMetadata": {
            "enableGlobalNamespace": False, "failoverVersionIncrement": 10,
            "masterClusterName": "active", "currentClusterName": "active",
            "clusterInformation": {"active": {
                "enabled": True, "initialFailoverVersion": 1, "rpcName": "frontend",
                "rpcAddress": f"127.0.0.1:{settings.temporal_port}"}}},
        "dcRedirectionPolicy": {"policy": "noop"},
        "dynamicConfigClient": {"filepath": str(dynamic), "pollInterval": "60s"},
    }
    path = home / "config.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


async def _register_namespace(settings: Settings) -> bool:
    """Register the settings' namespace (one day's retention) unless the frontend knows it."""
    from google.protobuf.duration_pb2 import Duration  # noqa: PLC0415
    from temporalio.api.workflowservice.v1 import (  # noqa: PLC0415
        CountWorkflowExecutionsRequest,
        DescribeNamespaceRequest,
        RegisterNamespaceRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode  # noqa: PLC0415

    from relayflow.runtime.clients import connect_temporal  # noqa: PLC0415 - only when it runs

    namespace = settings.temporal_namespace
    service = (await connect_temporal(settings, retries=False)).workflow_service
    try:
        await service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        await service.register_namespace(RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))
    # Describe reads the database; calls on the namespace go through the frontend's
    # namespace cache, which learns of a new one a little later: wait for that too.
    await service.count_workflow_executions(CountWorkflowExecutionsRequest(namespace=namespace))
    return True


def start_real_server(settings: Settings, service: str) -> int:
    """Start PostgreSQL and the real server, recorded as ``service``; returns its pid.

    The caller waits for the frontend to know the namespace.

    Raises:
        StackError: Go or PostgreSQL is missing, a build or schema step failed,
            or a port is taken.
    """
    server, tool = fetch_temporal_server(settings)
    home = service_dir(settings, service)
    home.mkdir(parents=True, exist_ok=True)
    ports = _ports(home)
    _start_postgres(settings, service_dir(settings, POSTGRES), ports[POSTGRES])
    _set_up_schema(tool, home, ports[POSTGRES])
    for name, port in ports.items():
        if name != POSTGRES:
            check_port_free(f"temporal server ({name})", port)
    config = _config(settings, home, ports)
    pid = spawn(settings, service, [str(server), "--config-file", str(config), "--allow-no-auth",
                                    "start"], settings.temporal_port, str(config), home)
    local = settings.model_copy(update={"temporal_address": f"127.0.0.1:{settings.temporal_port}"})
    wait_ready(service, pid, home / "stdout.log", lambda: _register_namespace(local))
    return pid


def stop_postgres(settings: Settings) -> bool:
    """Stop the stack's PostgreSQL (data kept). True if one was running."""
    return stop_service(settings, POSTGRES)


if __name__ == "__main__":
    # `make temporal-server` builds it ahead of `dev up --temporal server` and bench.servers.
    import sys

    sys.stdout.write("Temporal server and SQL tool: {} {}\n".format(
        *fetch_temporal_server(Settings())))
