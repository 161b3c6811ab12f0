"""``relayflow dev``: start, inspect and stop the local Kafka + Temporal stack."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from relayflow import devstack
from relayflow.config.settings import Settings, load_settings

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def fetch() -> None:
    """Fetch the Apache Kafka jars from Maven Central into the cache (once per version)."""
    settings = load_settings()
    console.print(f"Kafka {settings.kafka_version} jars: {devstack.fetch_kafka(settings)}")


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
) -> None:
    """Start Kafka and Temporal (reusing what already runs) and create the app's topics."""
    from relayflow.runtime.bootstrap import application  # noqa: PLC0415 - imports the app's code

    settings = load_settings(**({"kafka_dev_secure": True} if secure else {}),
                             **({"kafka_dev_brokers": brokers} if brokers else {}))
    started = devstack.up(settings, application(settings).all_topics())
    console.print("[green]stack started[/green]" if started else "stack already running")
    state = _print_status(settings)
    console.print("\nClients use:")
    servers = (devstack.bootstrap_servers(settings) if state.kafka_brokers > 1
               else settings.kafka_bootstrap_servers)
    console.print(f"  RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS={servers}")
    console.print(f"  RELAYFLOW_TEMPORAL_ADDRESS={settings.temporal_address}")
    if state.kafka_security:
        folder = devstack.dev_secrets(settings).folder
        console.print(f"  and the Kafka credentials of their principal: set -a; "
                      f". {folder}/<bridge|worker|approvals|tools>.env; set +a")


@app.command()
def down(
    purge: bool = typer.Option(False, help="Also delete topics, history and the store."),  # noqa: FBT001
) -> None:
    """Stop the Kafka and Temporal processes this stack started."""
    stopped = devstack.down(load_settings(), purge=purge)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status() -> None:
    """Show what runs where: pids, addresses, logs, the Temporal UI and the topics."""
    _print_status(load_settings())


def _print_status(settings: Settings) -> devstack.StackStatus:
    state = devstack.status(settings)
    table = Table(title=f"relayflow dev stack in {state.data_dir}")
    for column in ("service", "state", "pid", "address", "log"):
        table.add_column(column)
    for s in state.services:
        table.add_row(s.name, "[green]running[/green]" if s.running else "[red]stopped[/red]",
                      str(s.pid or "-"), s.address, str(s.log_file))
    console.print(table)
    console.print(f"Temporal UI: {state.temporal_ui_url}")
    if state.kafka_brokers > 1:
        console.print(f"Kafka: {state.kafka_brokers} brokers (each also a KRaft controller), "
                      f"topics replicated {state.kafka_brokers} times, min.insync.replicas 2")
    if state.topics:
        console.print("Topics: " + ", ".join(f"{n} ({p})" for n, p in sorted(state.topics.items())))
    console.print(f"Kafka secured: {state.kafka_security}" if state.kafka_security
                  else "Kafka: plaintext, no authentication (`dev up --secure` on a new stack)")
    return state
