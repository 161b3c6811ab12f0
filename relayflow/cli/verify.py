"""``relayflow verify``: check the invariants on Kafka, Temporal and the store."""

from __future__ import annotations

import asyncio

import typer

from relayflow.cli.options import APP, OUTPUT, Output, configured, emit_json

__all__ = ["register"]


def verify(
    key_prefix: str = typer.Option("", help="Only keys starting with this (one run's records)."),
    wait: float = typer.Option(0.0, help="Seconds to give running flows to finish first."),
    output: Output = OUTPUT,
    app_spec: str | None = APP,
) -> None:
    """Check the application's invariants on Kafka and Temporal; exit 1 on any violation.

    Reads its input, outcome and dead-letter topics: every input is processed
    or dead-lettered, every workflow ends with exactly one terminal outcome and
    runs once; plus the application's own checks (the reference store's, say).
    """
    from relayflow.operate.verify import verify_until_settled  # noqa: PLC0415

    settings, served = configured(app_spec)
    report = asyncio.run(verify_until_settled(settings, app=served, key_prefix=key_prefix,
                                              wait_seconds=wait))
    if output is Output.JSON:
        emit_json(report.as_json())
    else:
        typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add ``verify`` to ``app``."""
    app.command()(verify)
