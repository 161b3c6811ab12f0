"""``relayflow verify``: check the invariants on Kafka, Temporal and the store."""

from __future__ import annotations

import asyncio

import typer

from relayflow.cli.options import APP, configured

__all__ = ["register"]


def verify(
    key_prefix: str = typer.Option("", help="Only keys starting with this (one run's records)."),
    wait: float = typer.Option(0.0, help="Seconds to give running flows to finish first."),
    app_spec: str | None = APP,
) -> None:
    """Check the invariants on Kafka, Temporal and the store; exit 1 on any violation."""
    from relayflow.operate.verify import verify_until_settled  # noqa: PLC0415

    settings, _ = configured(app_spec)
    report = asyncio.run(verify_until_settled(settings, key_prefix=key_prefix, wait_seconds=wait))
    typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add ``verify`` to ``app``."""
    app.command()(verify)
