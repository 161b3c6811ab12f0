"""The typer front ends of ``relayflow send``, ``tail``, ``decide``, ``status`` and ``top``.

Thin: read the options, call the command's module, print text (rich) or
JSON (``--output json``). ``relayflow.cli`` adds them to its app
(``register``) and turns an ``OperatorError`` into its message and exit status.
Heavy modules are imported inside each command, so ``relayflow --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from relayflow.config.settings import Settings, load_settings

if TYPE_CHECKING:
    from relayflow.application import Application
    from relayflow.operate.status import StatusReport

__all__ = ["OUTPUT", "TIMEOUT", "Output", "emit_json", "register", "seconds_of"]

T = TypeVar("T")


class Output(StrEnum):
    """How a command prints: ``text`` for people (rich), ``json`` for scripts."""

    TEXT = "text"
    JSON = "json"


OUTPUT = typer.Option(Output.TEXT, "--output", "-o",
                      help="text (for people) or json (for scripts: one object, or one per line "
                           "for streams).")
TIMEOUT = typer.Option(None, "--timeout", min=0.001,
                       help="Seconds to wait for each answer of Kafka, Temporal, a worker or a "
                            "metrics endpoint (default RELAYFLOW_OPERATOR_TIMEOUT_SECONDS, 10); "
                            "no answer: exit 3.")


def seconds_of(timeout: float | None, settings: Settings) -> float:
    """``--timeout`` when given, else the setting."""
    return timeout if timeout is not None else settings.operator_timeout_seconds


def emit_json(value: Any) -> None:
    """Print one JSON document (one line) on stdout."""
    typer.echo(json.dumps(value, default=str))


def _application(settings: Settings) -> Application:
    from relayflow.application import load_application  # noqa: PLC0415

    try:
        return load_application(settings.app)
    except (ImportError, TypeError, ValueError) as error:
        raise typer.BadParameter(f"{settings.app}: {error}",
                                 param_hint="RELAYFLOW_APP") from error


def until_interrupted(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``main(stop)``; SIGINT (Ctrl-C) or SIGTERM sets ``stop``."""

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Signal handlers can only be set from the main thread (not, e.g., a test's worker).
        signals = (signal.SIGINT, signal.SIGTERM) \
            if threading.current_thread() is threading.main_thread() else ()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        try:
            return await main(stop)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())


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
) -> None:
    """Validate an event against its model and send it as the contract says; print where it landed.

    Invalid JSON or an invalid event: one message, exit 2, nothing sent.
    """
    from relayflow.operate import send as sending  # noqa: PLC0415

    settings = load_settings()
    app = _application(settings)
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
) -> None:
    """Print a topic's records decoded, one a line; dead letters with their reason.

    Reads to the current end and exits, or with --follow goes on until Ctrl-C.
    Joins no consumer group and commits nothing.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from relayflow.operate.tail import tail as tailing  # noqa: PLC0415
    from relayflow.runtime.bootstrap import unless_stopped  # noqa: PLC0415

    settings = load_settings()
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
) -> None:
    """Answer an order's pending approval: an ApprovalDecided on approvals.decisions.

    Exit 1 when the order does not exist or waits for no decision; 2 when
    --by may not decide it; 3 when Temporal, a worker or Kafka did not answer.
    """
    from relayflow.operate.decide import DECISIONS  # noqa: PLC0415
    from relayflow.operate.decide import decide as deciding  # noqa: PLC0415

    settings = load_settings()
    sent = asyncio.run(deciding(settings, order_id, decision.value, by=by, comment=comment,
                                seconds=seconds_of(timeout, settings)))
    if output is Output.JSON:
        emit_json(sent.as_json() | {"order_id": order_id, "decision": DECISIONS[decision.value],
                                    "decided_by": by})
    else:
        typer.echo(f"{decision.value}d order {order_id} as {by!r}; {sent.as_line()}; the bridge "
                   "signals the saga")


def status(
    subject: str = typer.Argument(help="An order id or a batch id."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
) -> None:
    """The workflow of an order or batch: state, steps, outcome events, Temporal UI link."""
    from relayflow.operate.errors import EXIT_UNANSWERED  # noqa: PLC0415
    from relayflow.operate.status import status as reading  # noqa: PLC0415

    settings = load_settings()
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
        console.print(Text(f"outcome events ({len(w.outcomes)}):"))
        for record in w.outcomes:
            console.print(Text(f"  {record.as_line()}"))
        console.print(Text(f"Temporal UI: {w.ui_url}"))


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
) -> None:
    """A live dashboard: rates, lag, calls in flight, dead letters, parked keys, approvals, batches.

    With --once, exit 3 when anything did not answer (the frame is printed anyway).
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    from relayflow.operate.deadlines import EXIT_UNANSWERED  # noqa: PLC0415
    from relayflow.operate.top import Dashboard, frames, one_frame, render  # noqa: PLC0415

    settings = load_settings()
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
    for command in (send, tail, decide, status, top):
        app.command()(command)
