"""``relayflow batch-failures``: the failed items of one of the application's batches."""

from __future__ import annotations

import typer

from relayflow.cli.options import APP, OUTPUT, Output, configured, emit_json

__all__ = ["register"]


def batch_failures(batch_id: str = typer.Argument(help="The batch's id."),
                   output: Output = OUTPUT, app_spec: str | None = APP) -> None:
    """List every failed item of a batch with its reason (the app's BatchFailures).

    Exit 1 when the application keeps no batch failures (no ``BatchFailures`` extension).
    """
    from relayflow.operate.batches import failed_items  # noqa: PLC0415

    settings, served = configured(app_spec)
    failures = failed_items(settings, served, batch_id)
    if output is Output.JSON:
        emit_json([{"item_id": item_id, "reason": reason} for item_id, reason in failures])
        return
    for item_id, reason in failures:
        typer.echo(f"{item_id}\t{reason}")
    typer.echo(f"{len(failures)} failed item(s) in batch {batch_id}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``batch-failures`` to ``app``."""
    app.command("batch-failures")(batch_failures)
