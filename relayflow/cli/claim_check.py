"""``relayflow claim-check``: the blob store of large payloads."""

from __future__ import annotations

import asyncio

import typer

from relayflow.cli.options import OUTPUT, Output, emit_json
from relayflow.config.settings import load_settings

__all__ = ["app"]

app = typer.Typer(help="Claim check: the blob store of payloads too large for Temporal.",
                  no_args_is_help=True)


@app.command("sweep")
def sweep(output: Output = OUTPUT) -> None:
    """Delete the blobs of workflows closed longer ago than RELAYFLOW_CLAIM_CHECK_RETENTION_HOURS.

    And outcome values older than RELAYFLOW_CLAIM_CHECK_OUTCOME_RETENTION_HOURS.
    The worker runs the same sweep on a Temporal Schedule
    (RELAYFLOW_CLAIM_CHECK_SWEEP_SECONDS); this runs one now. It is safe to
    run several at once and to stop at any point.
    """
    from relayflow.operate.claim_check import sweep_claim_check  # noqa: PLC0415

    report = asyncio.run(sweep_claim_check(load_settings()))
    if output is Output.JSON:
        emit_json({"markers": report.markers, "blobs": report.blobs,
                   "outcomes": report.outcomes})
    else:
        typer.echo(f"{report.markers} markers, {report.blobs} blobs and {report.outcomes} "
                   "outcome values deleted")
