"""``relayflow dev``: start, inspect and stop the local Kafka + Temporal stack.

Which stack a command means, from any folder: the one in ``RELAYFLOW_DATA_DIR``
when that is set; else ``.relayflow`` in the working folder when it exists;
else the stack ``relayflow dev up`` last started, which it records (data
folder, ports, addresses) in ``<cache dir>/dev-stack.json``. So ``dev status``
and ``dev down`` find the stack from an application's own folder too, and
``dev up`` there reuses the stack that runs instead of starting a second one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from relayflow.cli.options import APP, configured
from relayflow.config.settings import Settings, load_settings

if TYPE_CHECKING:
    from relayflow.application import Application
    from relayflow.devstack import StackStatus

__all__ = ["STACK_RECORD", "app", "dev_decision_keys", "record_stack", "stack_settings"]

app = typer.Typer(no_args_is_help=True)
console = Console()

STACK_RECORD = "dev-stack.json"
"""The file, in the cache folder, where ``dev up`` records the stack it started."""

_STACK_FIELDS = ("data_dir", "kafka_port", "kafka_controller_port", "kafka_advertised_port",
                 "kafka_dev_brokers", "kafka_dev_node_ports", "kafka_dev_secure",
                 "kafka_bootstrap_servers", "temporal_port", "temporal_ui_port",
                 "temporal_metrics_port", "temporal_address", "temporal_namespace",
                 "temporal_dev_server")
"""The settings that say where a dev stack lives and answers."""


def _record_path(settings: Settings) -> Path:
    return settings.cache_dir / STACK_RECORD


def _recorded(settings: Settings) -> dict[str, Any] | None:
    """The stack ``dev up`` last recorded, when its data folder still exists."""
    try:
        recorded = json.loads(_record_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or not Path(str(recorded.get("data_dir"))).is_dir():
        return None
    return recorded


def record_stack(settings: Settings) -> None:
    """Remember ``settings``' stack as the one ``dev`` commands find from other folders.

    Args:
        settings: The settings the stack was started with.
    """
    values = settings.model_dump(mode="json", include=set(_STACK_FIELDS))
    values["data_dir"] = str(settings.data_dir.resolve())
    path = _record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")


def stack_settings(**overrides: object) -> Settings:
    """Settings of the dev stack a ``dev`` command means (see the module's docstring).

    A recorded stack's values are used for the stack's settings the
    environment (or ``overrides``) does not set.

    Args:
        overrides: Settings the command's options give.
    """
    settings = load_settings(**overrides)
    if "data_dir" in settings.model_fields_set or settings.data_dir.exists():
        return settings
    recorded = _recorded(settings)
    if recorded is None:
        return settings
    return load_settings(**{name: value for name, value in recorded.items()
                            if name in _STACK_FIELDS and name not in settings.model_fields_set},
                         **overrides)


@app.command()
def fetch() -> None:
    """Fetch the Kafka jars and the tests' schema registry from Maven Central (once per version)."""
    from relayflow import devstack  # noqa: PLC0415 - keeps --help fast
    from relayflow.devstack.registry import APICURIO_VERSION, fetch_registry  # noqa: PLC0415

    settings = load_settings()
    console.print(f"Kafka {settings.kafka_version} jars: {devstack.fetch_kafka(settings)}")
    console.print(f"Apicurio Registry {APICURIO_VERSION} (a Confluent-compatible schema "
                  f"registry for the tests): {fetch_registry(settings)}")


@app.command()
def up(
    secure: bool = typer.Option(  # noqa: FBT001
        False, "--secure",
        help="Format a new broker secured: SASL_SSL + SCRAM-SHA-512, client certificates, "
             "ACLs per principal (also RELAYFLOW_KAFKA_DEV_SECURE=true)."),
    brokers: int | None = typer.Option(
        None, "--brokers",
        help="Format a new Kafka with 1 or 3 KRaft nodes; 3: topics replicated 3 times, "
             "min.insync.replicas 2 (also RELAYFLOW_KAFKA_DEV_BROKERS)."),
    temporal: str | None = typer.Option(
        None, "--temporal",
        help="Which Temporal a new stack runs: dev (temporal server start-dev, SQLite, with a "
             "web UI) or server (the real server built from go.temporal.io/server, PostgreSQL, "
             "4 history shards, no UI; needs Go and PostgreSQL: make temporal-server) "
             "(also RELAYFLOW_TEMPORAL_DEV_SERVER)."),
    app_spec: str | None = APP,
) -> None:
    """Start Kafka and Temporal (reusing what already runs) and create the app's topics.

    Reuses the stack `relayflow dev up` last started, from any folder, while it runs,
    unless RELAYFLOW_DATA_DIR is set or the working folder has a .relayflow.
    """
    from relayflow import devstack  # noqa: PLC0415 - keeps --help fast

    overrides: dict[str, object] = {**({"kafka_dev_secure": True} if secure else {}),
                                    **({"kafka_dev_brokers": brokers} if brokers else {}),
                                    **({"temporal_dev_server": temporal} if temporal else {})}
    settings, served = configured(app_spec, **overrides)
    running = stack_settings(**overrides)
    if any(service.running for service in devstack.status(running).services):
        settings = settings.model_copy(
            update={name: getattr(running, name) for name in _STACK_FIELDS})
    started = devstack.up(settings, served.all_topics())
    record_stack(settings)
    keys = dev_decision_keys(settings.data_dir, served)
    console.print("[green]stack started[/green]" if started else "stack already running")
    state = _print_status(settings)
    console.print("\nClients use:")
    servers = (devstack.bootstrap_servers(settings) if state.kafka_brokers > 1
               else settings.kafka_bootstrap_servers)
    console.print(f"  RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS={servers}")
    console.print(f"  RELAYFLOW_TEMPORAL_ADDRESS={settings.temporal_address}")
    if keys:
        console.print(f"  decisions are signed with the dev keys in {keys[0].parent} "
                      f"(registered in {keys[-1]}; relayflow decide and the console find them)")
    if state.kafka_security:
        folder = devstack.dev_secrets(settings).folder
        console.print(f"  and the Kafka credentials of their principal: set -a; "
                      f". {folder}/<bridge|worker|approvals|tools>.env; set +a")


def dev_decision_keys(data_dir: Path, served: Application) -> list[Path]:
    """The application's dev decision keys, made once, if its decisions are signed."""
    from relayflow.operate.approvals import approvals_in  # noqa: PLC0415
    from relayflow.operate.signing import SignedDecisions  # noqa: PLC0415

    approvals = approvals_in(served)
    if not isinstance(approvals, SignedDecisions):
        return []
    return list(approvals.dev_keys(data_dir))


@app.command()
def down(
    purge: bool = typer.Option(  # noqa: FBT001
        False, help="Also delete the data folder: topics, history, applications' local files."),
) -> None:
    """Stop the Kafka and Temporal processes this stack started.

    The stack: the one in RELAYFLOW_DATA_DIR when that is set, else .relayflow in the
    working folder, else the one `relayflow dev up` last started (from any folder).
    """
    from relayflow import devstack  # noqa: PLC0415 - keeps --help fast

    stopped = devstack.down(stack_settings(), purge=purge)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status() -> None:
    """Show what runs where: pids, addresses, logs, the Temporal UI and the topics.

    The stack: the one in RELAYFLOW_DATA_DIR when that is set, else .relayflow in the
    working folder, else the one `relayflow dev up` last started (from any folder).
    """
    _print_status(stack_settings())


def _print_status(settings: Settings) -> StackStatus:
    from relayflow import devstack  # noqa: PLC0415 - keeps --help fast

    state = devstack.status(settings)
    table = Table(title=f"relayflow dev stack in {state.data_dir}")
    for column in ("service", "state", "pid", "address", "log"):
        table.add_column(column)
    for s in state.services:
        table.add_row(s.name, "[green]running[/green]" if s.running else "[red]stopped[/red]",
                      str(s.pid or "-"), s.address, str(s.log_file))
    console.print(table)
    console.print(f"Temporal UI: {state.temporal_ui_url}" if state.temporal_ui_url
                  else "Temporal: the real server (PostgreSQL), no web UI")
    if state.kafka_brokers > 1:
        console.print(f"Kafka: {state.kafka_brokers} brokers (each also a KRaft controller), "
                      f"topics replicated {state.kafka_brokers} times, min.insync.replicas 2")
    if state.topics:
        console.print("Topics: " + ", ".join(f"{n} ({p})" for n, p in sorted(state.topics.items())))
    console.print(f"Kafka secured: {state.kafka_security}" if state.kafka_security
                  else "Kafka: plaintext, no authentication (`dev up --secure` on a new stack)")
    return state
