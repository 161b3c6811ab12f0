"""``relayflow batch-failures``: the failed items of one of the reference app's batches."""

from __future__ import annotations

import typer

from relayflow.cli.options import APP, OUTPUT, Output, configured, emit_json

__all__ = ["register"]


def batch_failures(batch_id: str = typer.Argument(help="The batch's id."),
                   output: Output = OUTPUT, app_spec: str | None = APP) -> None:
    """List every failed item of a batch with its reason (BatchCompleted's failed_items_ref)."""
    from relayflow.reference.activities.store import Store  # noqa: PLC0415

    settings, _ = configured(app_spec)
    store = Store(settings.store_path, card_limit_cents=settings.card_limit_cents)
    failures = store.failed_items(batch_id)
    if output is Output.JSON:
        emit_json([{"item_id": item_id, "reason": reason} for item_id, reason in failures])
        return
    for item_id, reason in failures:
        typer.echo(f"{item_id}\t{reason}")
    typer.echo(f"{len(failures)} failed item(s) in batch {batch_id}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``batch-failures`` to ``app``."""
    app.command("batch-failures")(batch_failures)
