"""The typer front ends of ``relayflow send``, ``tail``, ``status`` and ``top``.

Thin: read the options, call the command's module in ``relayflow.operate``,
print text (rich) or JSON (``--output json``). ``relayflow.cli.main`` adds
them to its app (``register``) and turns an ``OperatorError`` into its
message and exit status. Heavy modules are imported inside each command, so
``relayflow --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from relayflow.cli.options import (
    APP,
    OUTPUT,
    TIMEOUT,
    Output,
    configured,
    emit_json,
    seconds_of,
    until_interrupted,
)

if TYPE_CHECKING:
    from rich.table import Table

    from relayflow.operate.activities import PendingActivity
    from relayflow.operate.status import StatusReport

__all__ = ["register"]


def _event_text(json_text: str | None, file: str | None) -> str:
    from relayflow.operate.deadlines import BadInput  # noqa: PLC0415

    if (json_text is None) == (file is None):
        raise BadInput("give the event with exactly one of --json TEXT or --file PATH "
                       "('-' for either reads standard input)")
    if json_text is not None and json_text != "-":
        return json_text
    if json_text == "-" or file == "-":
        return sys.stdin.read()
    try:
        return Path(str(file)).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read {file}: {getattr(error, 'strerror', None) or error}") \
            from None


def send(
    event_type: str = typer.Argument(help="The event type: class name (OrderPlaced) or Avro "
                                          "full name (relayflow.orders.OrderPlaced)."),
    json_text: str | None = typer.Option(None, "--json", help="The event as JSON ('-': stdin). "
                                         "event_id and occurred_at are filled in when left out."),
    file: str | None = typer.Option(None, "--file", help="A file holding the event as JSON "
                                                         "('-': stdin)."),
    topic: str | None = typer.Option(None, help="Send here instead of the input topic whose "
                                                "route takes the event type."),
    correlation_id: str | None = typer.Option(None, help="correlation-id header (default: "
                                                         "the event id)."),
    causation_id: str | None = typer.Option(None, help="causation-id header (default: none)."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Validate an event against its model and send it as the contract says; print where it landed.

    Invalid JSON or an invalid event: one message, exit 2, nothing sent.
    """
    from relayflow.operate import send as sending  # noqa: PLC0415

    settings, app = configured(app_spec)
    model = sending.event_type_named(app, event_type)
    event = sending.parse_event(model, _event_text(json_text, file))
    where = sending.topic_for(app, model, topic)
    sent = asyncio.run(sending.send(settings, app, event, where, seconds=seconds_of(timeout,
                                                                                     settings),
                                    correlation_id=correlation_id, causation_id=causation_id))
    if output is Output.JSON:
        emit_json(sent.as_json())
    else:
        typer.echo(sent.as_line())


def tail(
    topic: str = typer.Argument(help="The topic: an input, outcome or dead-letter topic, or "
                                     "relayflow.parked-keys."),
    *,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing records as they "
                                                              "arrive, until Ctrl-C."),
    key: str | None = typer.Option(None, help="Only records with this key."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the "
                                        "beginning of each partition."),
    last: int = typer.Option(10, "--last", "-n", min=0, help="Otherwise start this many "
                                                            "records before each partition's end."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """Print a topic's records decoded, one a line; dead letters with their reason.

    Reads to the current end and exits, or with --follow goes on until Ctrl-C.
    Joins no consumer group and commits nothing.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from relayflow.operate.tail import tail as tailing  # noqa: PLC0415
    from relayflow.runtime.bootstrap import unless_stopped  # noqa: PLC0415

    settings, _ = configured(app_spec)
    console = Console(highlight=False, soft_wrap=True)
    count = 0

    async def pump() -> None:
        nonlocal count
        records: AsyncIterator[Any] = tailing(
            settings, topic, seconds=seconds_of(timeout, settings), key=key,
            from_beginning=from_beginning, last=last, follow=follow)
        async for record in records:
            count += 1
            if output is Output.JSON:
                emit_json(record.as_json())
            else:
                console.print(Text(record.as_line()))

    until_interrupted(lambda stop: unless_stopped(pump(), stop))
    if output is Output.TEXT:
        typer.echo(f"{count} record(s) of {topic}" + (f" with key {key!r}" if key else ""),
                   err=True)


def status(
    subject: str = typer.Argument(help="A business key, what the routes' workflow ids are made "
                                       "of (an order id, a ticket id)."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """The workflow a business key addresses: state, steps, outcome events, Temporal UI link."""
    from relayflow.operate.errors import EXIT_UNANSWERED  # noqa: PLC0415
    from relayflow.operate.status import status as reading  # noqa: PLC0415

    settings, _ = configured(app_spec)
    report = asyncio.run(reading(settings, subject, seconds=seconds_of(timeout, settings)))
    if output is Output.JSON:
        emit_json(report.as_json())
    else:
        _print_status(report)
    if report.unanswered:
        for line in report.unanswered:
            typer.echo(f"relayflow: {line}", err=True)
        raise typer.Exit(EXIT_UNANSWERED)


def _print_status(report: StatusReport) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console = Console(highlight=False, soft_wrap=True)
    for w in report.workflows:
        closed = f", closed {w.closed_at:%Y-%m-%d %H:%M:%S} UTC" if w.closed_at else ""
        console.print(Text(f"{w.workflow_type} {w.workflow_id}: {w.status} (started "
                           f"{w.started_at:%Y-%m-%d %H:%M:%S} UTC{closed}; task queue "
                           f"{w.task_queue})", style="bold"))
        steps = Table(title="steps", title_justify="left")
        for column in ("kind", "name", "state", "detail"):
            steps.add_column(column)
        for step in w.steps:
            steps.add_row(step.kind, step.name, step.state, step.detail)
        console.print(steps)
        for name, answer in w.queries.items():
            console.print(Text(f"{name}: {json.dumps(answer, default=str)}"))
        if w.activities:
            console.print(_activities_table(w.activities))
        console.print(Text(f"outcome events ({len(w.outcomes)}):"))
        for record in w.outcomes:
            console.print(Text(f"  {record.as_line()}"))
        console.print(Text(f"Temporal UI: {w.ui_url}"))


def _activities_table(pending: Sequence[PendingActivity]) -> Table:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="waiting for activities", title_justify="left")
    for column in ("workflow", "activity", "state", "attempt", "last heartbeat", "details"):
        table.add_column(column)
    for a in pending:
        beat = f"{a.last_heartbeat_at:%H:%M:%S} UTC" if a.last_heartbeat_at else "never"
        details = "" if a.heartbeat is None else json.dumps(a.heartbeat, default=str)[:160]
        table.add_row(a.workflow_id, f"{a.activity_id} {a.activity_type}", a.state,
                      f"{a.attempt}/{a.maximum_attempts or '∞'}", beat, details)
    return table


def top(
    metrics: list[str] = typer.Option(None, "--metrics", help="A /metrics URL to read (repeat "
                                      "for several; default the bridge's and the worker's on "
                                      "127.0.0.1 at RELAYFLOW_BRIDGE_HTTP_PORT and "
                                      "RELAYFLOW_WORKER_HTTP_PORT)."),
    *,
    interval: float = typer.Option(2.0, min=0.05, help="Seconds between refreshes (rates are "
                                                       "the counters' change over it)."),
    once: bool = typer.Option(False, "--once", help="Print one frame and exit (after one "
                                                    "interval, for the rates)."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
    app_spec: str | None = APP,
) -> None:
    """A live dashboard: rates, lag, calls in flight, dead letters, parked keys, workflows.

    With --once, exit 3 when anything did not answer (the frame is printed anyway).
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    from relayflow.operate.deadlines import EXIT_UNANSWERED  # noqa: PLC0415
    from relayflow.operate.top import Dashboard, frames, one_frame, render  # noqa: PLC0415

    settings, _ = configured(app_spec)
    dashboard = Dashboard(settings, list(metrics) if metrics else None,
                          seconds=seconds_of(timeout, settings))
    console = Console()

    async def main(stop: asyncio.Event) -> list[str]:
        if once:
            frame = await one_frame(dashboard, interval, stop)
            if output is Output.JSON:
                emit_json(frame.as_json())
            else:
                console.print(render(frame))
            return frame.unanswered
        if output is Output.JSON:
            async for frame in frames(dashboard, interval, stop):
                emit_json(frame.as_json())
            return []
        with Live(console=console, auto_refresh=False) as screen:
            async for frame in frames(dashboard, interval, stop):
                screen.update(render(frame), refresh=True)
        return []

    unanswered = until_interrupted(main)
    if unanswered:
        if output is Output.JSON:  # the text frame names them already
            for line in unanswered:
                typer.echo(f"relayflow: {line}", err=True)
        raise typer.Exit(EXIT_UNANSWERED)


def register(app: typer.Typer) -> None:
    """Add the operator's commands to ``app``."""
    for command in (send, tail, status, top):
        app.command()(command)
