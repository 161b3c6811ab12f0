"""``relayflow approvals`` (the pending ones) and ``relayflow decide`` (answer one)."""

from __future__ import annotations

import asyncio
from enum import StrEnum

import typer

from relayflow.cli.options import APP, OUTPUT, TIMEOUT, Output, configured, emit_json, seconds_of

__all__ = ["DecisionWord", "register"]


def approvals(output: Output = OUTPUT, timeout: float | None = TIMEOUT,
              app_spec: str | None = APP) -> None:
    """List what waits for a person's approval (the app's Approvals): who may decide, until when.

    Sagas on RELAYFLOW_TASK_QUEUE only (the deployment whose workers answer);
    also the decisions each saga refused because their sender was not asked.
    Exit 3 when Temporal, or a worker for some saga's query, did not answer.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.operate.approvals import pending_approvals  # noqa: PLC0415

    settings, _ = configured(app_spec)
    found = asyncio.run(pending_approvals(settings, seconds_of(timeout, settings)))
    pending, silent = found.pending, found.silent
    if output is Output.JSON:
        emit_json([p.as_json() for p in pending])
    else:
        counted = (f"{len(pending)}" if silent is None else
                   f"{len(pending)} among the sagas that answered; "
                   f"{len(silent.workflow_ids)} did not")
        table = Table(title=f"pending approvals ({counted}); {found.hint}")
        for column in found.approvals.columns:
            table.add_column(column)
        for p in pending:
            table.add_row(*p.cells())
        Console().print(table)
    if silent is not None:
        raise silent


class DecisionWord(StrEnum):
    """What ``relayflow decide`` decides."""

    APPROVE = "approve"
    REJECT = "reject"


def decide(
    order_id: str = typer.Argument(help="The order waiting for approval."),
    decision: DecisionWord = typer.Argument(help="approve or reject."),
    by: str = typer.Option(..., "--by", help="Who decides: an approver the saga asked (see "
                                             "relayflow approvals), or <approver>/<person>."),
    comment: str | None = typer.Option(None, help="Free text, carried to the outcome."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Answer a pending approval (the reference app's: an ApprovalDecided on approvals.decisions).

    Exit 1 when the order does not exist or waits for no decision; 2 when
    --by may not decide it; 3 when Temporal, a worker or Kafka did not answer.
    """
    from relayflow.operate.decide import DECISIONS  # noqa: PLC0415
    from relayflow.operate.decide import decide as deciding  # noqa: PLC0415

    settings, _ = configured(app_spec)
    sent = asyncio.run(deciding(settings, order_id, decision.value, by=by, comment=comment,
                                seconds=seconds_of(timeout, settings)))
    if output is Output.JSON:
        emit_json(sent.as_json() | {"order_id": order_id, "decision": DECISIONS[decision.value],
                                    "decided_by": by})
    else:
        typer.echo(f"{decision.value}d order {order_id} as {by!r}; {sent.as_line()}; the bridge "
                   "signals the saga")


def register(app: typer.Typer) -> None:
    """Add ``approvals`` and ``decide`` to ``app``."""
    app.command()(approvals)
    app.command()(decide)
