"""``relayflow activity``: a workflow's pending activities (list, pause, unpause, reset).

Front ends of ``relayflow.operate.activities``, for any application's
workflows: an activity is named by its workflow's id and, when the workflow
waits for several, its activity id (``list`` shows them).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import typer

from relayflow.cli.options import APP, OUTPUT, TIMEOUT, Output, configured, emit_json, seconds_of

if TYPE_CHECKING:
    from relayflow.operate.activities import ActivityAction

__all__ = ["app"]

app = typer.Typer(help="A workflow's pending activities: list, pause, unpause, reset.",
                  no_args_is_help=True)

WORKFLOW = typer.Argument(help="The workflow's id (e.g. a batch chunk: batch-<id>-chunk-<n>).")
ACTIVITY = typer.Argument(None, help="The activity's id (relayflow activity list shows it); "
                                     "default: the workflow's only pending activity.")


def _show(done: ActivityAction, output: Output) -> None:
    if output is Output.JSON:
        emit_json({"action": done.action} | done.activity.as_json())
    else:
        typer.echo(done.as_line())


@app.command("list")
def activity_list(workflow_id: str = WORKFLOW, output: Output = OUTPUT,
                  timeout: float | None = TIMEOUT, app_spec: str | None = APP) -> None:
    """The activities a workflow waits for: state, attempt, last heartbeat (its progress).

    Exit 1 when there is no such workflow; 3 when Temporal did not answer.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.operate.activities import pending_activities  # noqa: PLC0415

    settings, _ = configured(app_spec)
    pending = asyncio.run(pending_activities(settings, workflow_id,
                                             seconds=seconds_of(timeout, settings)))
    if output is Output.JSON:
        emit_json([a.as_json() for a in pending])
        return
    table = Table(title=f"{len(pending)} pending activit{'y' if len(pending) == 1 else 'ies'} "
                        f"of {workflow_id}")
    for column in ("id", "type", "state", "attempt", "last heartbeat", "at", "last failure"):
        table.add_column(column)
    for a in pending:
        attempts = f"{a.attempt}/{a.maximum_attempts or '∞'}"
        heartbeat = "" if a.heartbeat is None else json.dumps(a.heartbeat, default=str)
        at = a.last_heartbeat_at.isoformat(timespec="seconds") if a.last_heartbeat_at else ""
        state = f"{a.state} ({a.paused_by})" if a.paused_by else a.state
        table.add_row(a.activity_id, a.activity_type, state, attempts, heartbeat[:120], at,
                      a.last_failure[:80])
    Console().print(table)


@app.command("pause")
def pause(workflow_id: str = WORKFLOW, activity_id: str | None = ACTIVITY,
          reason: str = typer.Option("paused by an operator", help="Kept with the pause."),
          output: Output = OUTPUT, timeout: float | None = TIMEOUT,
          app_spec: str | None = APP) -> None:
    """Pause an activity: a running one stops at its next heartbeat; no attempt until unpaused.

    Exit 1 when there is no such workflow or activity, or the Temporal server
    does not support pausing; 2 when the workflow waits for several activities
    and none is named; 3 when Temporal did not answer.
    """
    from relayflow.operate.activities import pause_activity  # noqa: PLC0415

    settings, _ = configured(app_spec)
    _show(asyncio.run(pause_activity(settings, workflow_id, activity_id, reason=reason,
                                     seconds=seconds_of(timeout, settings))), output)


@app.command("unpause")
def unpause(workflow_id: str = WORKFLOW, activity_id: str | None = ACTIVITY, *,
            reset_attempts: bool = typer.Option(False, help="Count attempts from 1 again."),
            reset_heartbeat: bool = typer.Option(
                False, help="Drop the last heartbeat's details: no resuming from them."),
            output: Output = OUTPUT, timeout: float | None = TIMEOUT,
            app_spec: str | None = APP) -> None:
    """Unpause an activity: its next attempt starts now, from its last heartbeat.

    Exit statuses as for ``pause``.
    """
    from relayflow.operate.activities import unpause_activity  # noqa: PLC0415

    settings, _ = configured(app_spec)
    _show(asyncio.run(unpause_activity(
        settings, workflow_id, activity_id, reset_attempts=reset_attempts,
        reset_heartbeat=reset_heartbeat, seconds=seconds_of(timeout, settings))), output)


@app.command("reset")
def reset(workflow_id: str = WORKFLOW, activity_id: str | None = ACTIVITY, *,
          reset_heartbeat: bool = typer.Option(
              False, help="Drop the heartbeat details too: start from the beginning."),
          keep_paused: bool = typer.Option(False, help="A paused activity stays paused."),
          output: Output = OUTPUT, timeout: float | None = TIMEOUT,
          app_spec: str | None = APP) -> None:
    """Reset an activity: attempt 1 again, timeouts re-armed; a paused one is unpaused.

    A running activity is cancelled at its next heartbeat and started again.
    Exit statuses as for ``pause``.
    """
    from relayflow.operate.activities import reset_activity  # noqa: PLC0415

    settings, _ = configured(app_spec)
    _show(asyncio.run(reset_activity(
        settings, workflow_id, activity_id, reset_heartbeat=reset_heartbeat,
        keep_paused=keep_paused, seconds=seconds_of(timeout, settings))), output)
