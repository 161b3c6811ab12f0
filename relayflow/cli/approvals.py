"""``relayflow approvals`` (the pending ones), ``relayflow decide`` (answer one, signed).

And ``relayflow approval-key``: a key pair to sign decisions with.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path

import typer

from relayflow.cli.options import APP, OUTPUT, TIMEOUT, Output, configured, emit_json, seconds_of

__all__ = ["DecisionWord", "approval_key", "register"]


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
    key: Path | None = typer.Option(
        None, "--key", help="Sign the decision with this key file (relayflow approval-key); "
                            "default RELAYFLOW_DECISION_KEY_FILE, else the dev stack's "
                            "<data_dir>/keys/approver.key; none: sent unsigned."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Answer a pending approval (the reference app's: an ApprovalDecided on approvals.decisions).

    Signed with the key file, so a saga that requires proof counts it when
    the key is registered as acting for --by. Exit 1 when the order does not
    exist or waits for no decision; 2 when --by may not decide it or the key
    file is bad; 3 when Temporal, a worker or Kafka did not answer.
    """
    from relayflow.operate.decide import DECISIONS  # noqa: PLC0415
    from relayflow.operate.decide import decide as deciding  # noqa: PLC0415

    settings, _ = configured(app_spec)
    sent = asyncio.run(deciding(settings, order_id, decision.value, by=by, comment=comment,
                                seconds=seconds_of(timeout, settings), key_file=key))
    key_id = getattr(sent.event, "key_id", None)
    if output is Output.JSON:
        emit_json(sent.as_json() | {"order_id": order_id, "decision": DECISIONS[decision.value],
                                    "decided_by": by, "key_id": key_id})
    else:
        signed = f"signed with key {key_id}" if key_id else "UNSIGNED (no key)"
        typer.echo(f"{decision.value}d order {order_id} as {by!r}, {signed}; {sent.as_line()}; "
                   "the bridge signals the saga")


def approval_key(
    key_id: str = typer.Option(..., "--id", help="The key's id in the registry (e.g. ann-2026)."),
    acts_for: list[str] = typer.Option(
        ..., "--acts-for", help="Whom it may sign for: a group (covers <group>/<anyone>: a "
                                "console's key) or <group>/<person> (a person's key); repeat."),
    out: Path = typer.Option(..., "--out", help="The private key file to create (0600; an "
                                                "existing file is never overwritten)."),
) -> None:
    """Make an Ed25519 key pair for signing approval decisions; print its registry entry.

    The private key goes to --out (give it to whoever signs: relayflow decide --key,
    or the console's RELAYFLOW_CONSOLE_DECISION_KEY_FILE); add the printed entry to
    the workers' registry (RELAYFLOW_APPROVAL_KEYS, {"keys": [...]}).
    """
    from relayflow.operate.errors import BadInput  # noqa: PLC0415
    from schemas.signatures import SigningKey  # noqa: PLC0415

    key = SigningKey.generate(key_id, acts_for)
    try:
        entry = key.trusted()
        key.save(out)
    except FileExistsError:
        raise BadInput(f"{out} exists: a key file is never overwritten") from None
    except ValueError as error:
        raise BadInput(str(error).splitlines()[0]) from None
    typer.echo(entry.model_dump_json(indent=2, exclude_none=True))


def register(app: typer.Typer) -> None:
    """Add ``approvals`` and ``decide`` to ``app``."""
    app.command()(approvals)
    app.command()(decide)
    app.command(name="approval-key")(approval_key)
