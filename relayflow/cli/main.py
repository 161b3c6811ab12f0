"""The ``relayflow`` command line: dev stack, worker, bridge, demo, tooling.

Heavy modules are imported inside each command so ``relayflow --help`` stays
fast and a command only pays for what it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from relayflow.cli.operate import OUTPUT, TIMEOUT, Output, emit_json, seconds_of
from relayflow.cli.operate import register as _register_operator_commands
from relayflow.config.settings import SettingError, Settings, load_settings
from relayflow.operate.errors import OperatorError

if TYPE_CHECKING:
    from relayflow.application import Application

__all__ = ["app"]

_TEMPORAL_BRIDGE = "temporalio.bridge.temporal_sdk_bridge"
"""The Temporal SDK's native module (loaded with ``temporalio.client``)."""


class _Commands(TyperGroup):
    """relayflow's commands: a bad or refused setting ends one with its message, no traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run as the ``relayflow`` program (tests call ``main`` instead, and are not affected).

        Once the Temporal SDK is loaded, the process ends without interpreter
        teardown, after flushing its output and logs: the SDK's threads may
        still be finishing a call's callback, and tearing down under them
        aborts the process (temporalio/sdk-python#300), losing the exit status.
        """
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as done:
            if _TEMPORAL_BRIDGE not in sys.modules:
                raise
            code = done.code
            if isinstance(code, str):
                print(code, file=sys.stderr)  # noqa: T201 - what sys.exit would print
            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code if isinstance(code, int) else 0 if code is None else 1)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SettingError as error:
            message, code = str(error), 2
        except OperatorError as error:  # not found (1), bad input (2), no answer (3)
            message, code = str(error), error.exit_code
            # Let go of what the failed command's frames hold now, a Temporal client above
            # all: one dropped at interpreter exit can abort it (temporalio/sdk-python#300).
            traceback.clear_frames(error.__traceback__)
        typer.echo(f"relayflow: {message}", err=True)
        raise typer.Exit(code)


app = typer.Typer(
    name="relayflow",
    help="Kafka events in, durable Temporal workflows in the middle, outcome events out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=_Commands,
)


def _configure_logging(settings: Settings) -> None:
    from relayflow.observability.logs import configure_logging  # noqa: PLC0415 - keeps --help fast

    configure_logging(settings)


def _run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` and set ``stop`` on SIGINT/SIGTERM for a graceful exit."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _mount_dev() -> None:
    from relayflow.cli.dev import app as dev_app  # noqa: PLC0415 - keeps --help fast

    app.add_typer(dev_app, name="dev", help="Local Kafka + Temporal dev stack (no Docker).")


_APP_HELP = ("The application to run, as module:attribute (default: RELAYFLOW_APP, "
             "else relayflow's own orders, approvals and batches).")


def _application(spec: str) -> Application:
    """The application ``spec`` names; a bad one is a usage error naming ``--app``."""
    from relayflow.application import load_application  # noqa: PLC0415

    try:
        return load_application(spec)
    except (ImportError, TypeError, ValueError) as error:
        raise typer.BadParameter(f"{spec}: {error}", param_hint="--app / RELAYFLOW_APP",
                                 ) from error


def _settings(app_spec: str | None = None) -> Settings:
    """Settings with ``--app`` applied; the application is loaded once here to fail early."""
    settings = load_settings(**({"app": app_spec} if app_spec else {}))
    _application(settings.app)
    from relayflow.temporal.payload_codec import payload_codec  # noqa: PLC0415

    payload_codec(settings)  # unusable keys raise SettingError before anything connects
    from relayflow.kafka.clients import KafkaClients  # noqa: PLC0415

    KafkaClients(settings)  # loads the TLS files now: a bad key stops us before Temporal
    from relayflow.observability.tracing import tracer_provider  # noqa: PLC0415

    tracer_provider(settings)  # a bad OTEL_TRACES_EXPORTER stops us here too
    return settings


@app.command()
def worker(app_spec: str | None = typer.Option(None, "--app", help=_APP_HELP)) -> None:
    """Run the Temporal worker: the application's workflows and activities."""
    from relayflow.runtime.bootstrap import run_worker  # noqa: PLC0415

    settings = _settings(app_spec)
    _configure_logging(settings)
    _run_until_signalled(lambda stop: run_worker(settings, stop=stop))


@app.command()
def bridge(app_spec: str | None = typer.Option(None, "--app", help=_APP_HELP)) -> None:
    """Run the Kafka → Temporal bridge (FastStream consumer, DLQ producer)."""
    from relayflow.runtime.bootstrap import run_bridge  # noqa: PLC0415

    settings = _settings(app_spec)
    _configure_logging(settings)
    _run_until_signalled(lambda stop: run_bridge(settings, stop=stop))


@app.command()
def run(
    app_spec: str | None = typer.Option(None, "--app", help=_APP_HELP),
    *,
    with_console: bool = typer.Option(False, "--console",
                                      help="Also serve the web console (RELAYFLOW_CONSOLE_*)."),
) -> None:
    """Run bridge and worker in one process (handy for the demo and local work)."""
    from relayflow.runtime.bootstrap import running  # noqa: PLC0415

    settings = _settings(app_spec)
    _configure_logging(settings)
    console = _console_starter(settings) if with_console else None

    async def both(stop: asyncio.Event) -> None:
        async with running(settings) as services, contextlib.AsyncExitStack() as extra:
            if console is not None:
                await extra.enter_async_context(console())
            # A service that dies ends the process with its error, instead of running half.
            waiting = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiting, *services], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()

    _run_until_signalled(both)


def _console_starter(settings: Settings,
                     ) -> Callable[[], contextlib.AbstractAsyncContextManager[str]]:
    """``running_console`` for these settings, its users loaded now (bad ones stop us here)."""
    from relayflow.console import load_users, running_console  # noqa: PLC0415

    users = load_users(settings)
    return lambda: running_console(settings, users=users)


console_app = typer.Typer(help="The web console: approvals inbox, orders, batches, dead letters "
                               "and parked keys (see README, The console).")
app.add_typer(console_app, name="console")


@console_app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Interface (default RELAYFLOW_CONSOLE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default RELAYFLOW_CONSOLE_PORT)."),
) -> None:
    """Serve the web console (reads Temporal and Kafka; writes decisions and DLQ replays)."""
    if ctx.invoked_subcommand is not None:
        return
    overrides = {k: v for k, v in (("console_host", host), ("console_port", port))
                 if v is not None}
    settings = load_settings(**overrides)
    _configure_logging(settings)
    starter = _console_starter(settings)

    async def serve(stop: asyncio.Event) -> None:
        async with starter() as url:
            typer.echo(f"relayflow console on {url} (Ctrl-C stops it)")
            await stop.wait()

    _run_until_signalled(serve)


@console_app.command("hash-password")
def console_hash_password() -> None:
    """Print an argon2 hash of a password for the console's users file.

    Asks for the password (twice) on a terminal; otherwise reads one line from standard input.
    """
    import sys  # noqa: PLC0415

    from relayflow.console import hash_password  # noqa: PLC0415

    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        typer.echo("relayflow: empty password", err=True)
        raise typer.Exit(2)
    typer.echo(hash_password(password))


@app.command()
def approvals(output: Output = OUTPUT, timeout: float | None = TIMEOUT) -> None:
    """List orders waiting for a person's approval: who may decide, since when, until when.

    Sagas on RELAYFLOW_TASK_QUEUE only (the deployment whose workers answer);
    also the decisions each saga refused because their sender was not asked.
    Exit 3 when Temporal, or a worker for some saga's query, did not answer.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.operate.deadlines import (  # noqa: PLC0415
        connected_temporal,
        listing_and_queries,
        temporal_answers,
    )
    from relayflow.reference.pending_approvals import (  # noqa: PLC0415
        COLUMNS,
        PendingApproval,
        SagasUnanswered,
        pending_approvals,
    )

    settings = load_settings()
    seconds = seconds_of(timeout, settings)

    async def load() -> tuple[list[PendingApproval], SagasUnanswered | None]:
        client = await connected_temporal(settings, seconds)
        try:
            async with temporal_answers(settings, listing_and_queries(seconds)):
                return await pending_approvals(client, seconds=seconds,
                                               task_queue=settings.task_queue), None
        except SagasUnanswered as silent:
            return silent.answered, silent

    pending, silent = asyncio.run(load())
    if output is Output.JSON:
        emit_json([{"workflow_id": p.workflow_id, **p.state.model_dump(mode="json")}
                   for p in pending])
    else:
        counted = (f"{len(pending)}" if silent is None else
                   f"{len(pending)} among the sagas that answered; "
                   f"{len(silent.workflow_ids)} did not")
        table = Table(title=f"pending approvals ({counted}); answer with relayflow decide "
                            "ORDER approve|reject --by WHO (an ApprovalDecided on "
                            "approvals.decisions), WHO one of 'may decide' or "
                            "<approver>/<person>")
        for column in COLUMNS:
            table.add_column(column)
        for p in pending:
            table.add_row(*p.cells())
        Console().print(table)
    if silent is not None:
        raise silent


@app.command("batch-failures")
def batch_failures(batch_id: str = typer.Argument(help="The batch's id."),
                   output: Output = OUTPUT) -> None:
    """List every failed item of a batch with its reason (BatchCompleted's failed_items_ref)."""
    from relayflow.reference.activities.store import Store  # noqa: PLC0415
    from relayflow.reference.settings import ReferenceSettings  # noqa: PLC0415

    settings = ReferenceSettings.of(load_settings())
    store = Store(settings.store_path, card_limit_cents=settings.card_limit_cents)
    failures = store.failed_items(batch_id)
    if output is Output.JSON:
        emit_json([{"item_id": item_id, "reason": reason} for item_id, reason in failures])
        return
    for item_id, reason in failures:
        typer.echo(f"{item_id}\t{reason}")
    typer.echo(f"{len(failures)} failed item(s) in batch {batch_id}", err=True)


dlq_app = typer.Typer(help="Dead-letter topics and parked keys: list, show, replay, release.",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

_KEY_HELP = "The record key (UTF-8 text; with --hex, hex digits)."


def _key(key: str, *, hex_key: bool) -> bytes:
    try:
        return bytes.fromhex(key) if hex_key else key.encode()
    except ValueError as error:
        raise typer.BadParameter(f"not hex: {key!r}") from error


@dlq_app.command("list")
def dlq_list(
    topic: list[str] = typer.Option(None, help="Source topic(s); default every input topic."),
    limit: int = typer.Option(50, help="Show the newest this many dead letters."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
) -> None:
    """Dead letters (newest last) and the parked keys."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from bridge.parking import ParkEntry  # noqa: PLC0415
    from relayflow.operate.deadlines import kafka_answers  # noqa: PLC0415
    from relayflow.operate.dlq import DeadLetter, parked_keys, read_dead_letters  # noqa: PLC0415
    from relayflow.operate.records import shown  # noqa: PLC0415

    settings = load_settings()

    async def load() -> tuple[list[DeadLetter], dict[tuple[str, bytes], ParkEntry]]:
        async with kafka_answers(settings, seconds_of(timeout, settings)):
            return await read_dead_letters(settings, topic or None), await parked_keys(settings)

    letters, parked = asyncio.run(load())
    newest = letters[-limit:]
    if output is Output.JSON:
        from relayflow.runtime.bootstrap import event_codec  # noqa: PLC0415

        codec = event_codec(settings)

        async def decoded() -> list[dict[str, object]]:
            return [(await shown(d, codec)).as_json() for d in newest]

        emit_json({"dead_letters_total": len(letters), "dead_letters": asyncio.run(decoded()),
                   "parked_keys": [{"topic": source, "key": key.decode(errors="replace"),
                                    **entry.model_dump(mode="json")}
                                   for (source, key), entry in sorted(parked.items())]})
        return
    console = Console()
    table = Table(title=f"dead letters: {len(letters)} (showing the last {len(newest)})")
    for column in ("dlq record", "key", "reason", "event type", "source", "failed at", "error"):
        table.add_column(column)
    for d in newest:
        table.add_row(d.coordinates, repr(d.key), d.reason, d.event_type,
                      "{}[{}]@{}".format(*d.source), d.failed_at, d.error[:80])
    console.print(table)
    keys = Table(title=f"parked keys: {len(parked)} (relayflow dlq replay|release TOPIC KEY)")
    for column in ("topic", "key", "reason", "parked at source", "first dead letter",
                   "replay in progress"):
        keys.add_column(column)
    for (source, key), entry in sorted(parked.items()):
        keys.add_row(source, repr(key), entry.reason,
                     f"[{entry.source_partition}]@{entry.source_offset}",
                     f"{source}.dlq/{entry.dlq_partition}/{entry.dlq_offset}",
                     entry.replay_id or "-")
    console.print(keys)


@dlq_app.command("show")
def dlq_show(
    dlq_topic: str = typer.Argument(help="The DLQ topic, e.g. orders.events.dlq."),
    partition: int = typer.Argument(help="Partition."),
    offset: int = typer.Argument(help="Offset."),
    output: Output = OUTPUT,
    timeout: float | None = TIMEOUT,
) -> None:
    """One dead letter: headers, and the event if its value decodes."""
    from relayflow.operate.deadlines import NotFound, kafka_answers  # noqa: PLC0415
    from relayflow.operate.dlq import read_dead_letters  # noqa: PLC0415
    from relayflow.operate.records import ShownRecord, shown  # noqa: PLC0415
    from schemas.topics import DLQ_SUFFIX  # noqa: PLC0415

    settings = load_settings()
    source = dlq_topic.removesuffix(DLQ_SUFFIX)

    async def load() -> ShownRecord:
        async with kafka_answers(settings, seconds_of(timeout, settings)):
            letters = await read_dead_letters(settings, [source], partition=partition,
                                              from_offset=offset)
        found = next((d for d in letters if d.offset == offset), None)
        if found is None:
            raise NotFound(f"no record at {dlq_topic}/{partition}/{offset}")
        from relayflow.runtime.bootstrap import event_codec  # noqa: PLC0415

        return await shown(found, event_codec(settings))

    letter = asyncio.run(load())
    if output is Output.JSON:
        emit_json(letter.as_json())
        return
    found = letter.record
    typer.echo(f"record   {found.coordinates}")
    typer.echo(f"key      {found.key!r}")
    for name, value in found.headers:
        typer.echo(f"header   {name}: {value.decode(errors='replace')}")
    if letter.event is None:
        value = found.value or b""
        typer.echo(f"value    {len(value)} bytes, not decodable ({letter.problem}): "
                   f"{value[:64]!r}")
    else:
        typer.echo(f"event    {letter.event.model_dump_json(indent=2)}")


def _kafka_answering(settings: Settings, topic: str, timeout: float | None) -> None:
    """Raise ``Unanswered`` unless Kafka answers (before work that must not stop half-way)."""
    from relayflow.kafka.reads import partitions_of  # noqa: PLC0415
    from relayflow.operate.deadlines import kafka_answers  # noqa: PLC0415

    async def ask() -> None:
        async with kafka_answers(settings, seconds_of(timeout, settings)):
            await partitions_of(settings, [topic])

    asyncio.run(ask())


@dlq_app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(help="Source topic of the parked key, e.g. orders.events."),
    key: str = typer.Argument(help=_KEY_HELP),
    *,
    hex_key: bool = typer.Option(False, "--hex", help="KEY is hex."),
    parked_only: bool = typer.Option(
        False, help="Skip the record that parked the key; replay the ones parked after it."),
    timeout: float | None = TIMEOUT,
) -> None:
    """Copy a parked key's dead letters back to its topic, in order; then it flows again."""
    from relayflow.operate.dlq import replay  # noqa: PLC0415

    raw = _key(key, hex_key=hex_key)
    settings = load_settings()
    _kafka_answering(settings, topic, timeout)  # a replay is not cut short by a timeout
    result = asyncio.run(replay(settings, topic, raw, parked_only=parked_only))
    for letter in result.copied:
        typer.echo(f"replayed {letter.coordinates} ({letter.reason}, {letter.event_type})")
    typer.echo({
        "replaying": f"replay {result.replay_id}: {len(result.copied)} record(s) back on "
                     f"{topic}; the bridge releases the key after the last one",
        "released": "nothing to replay; the key is released",
        "not-parked": "the key is not parked; nothing to do",
        "in-progress": f"replay {result.replay_id} of this key is still in progress",
    }[result.status])


@dlq_app.command("release")
def dlq_release(
    topic: str = typer.Argument(help="Source topic of the parked key."),
    key: str = typer.Argument(help=_KEY_HELP),
    *,
    hex_key: bool = typer.Option(False, "--hex", help="KEY is hex."),
    timeout: float | None = TIMEOUT,
) -> None:
    """Let a parked key flow again without replaying; its dead letters stay on the DLQ."""
    from relayflow.operate.dlq import release  # noqa: PLC0415

    settings = load_settings()
    _kafka_answering(settings, topic, timeout)
    entry = asyncio.run(release(settings, topic, _key(key, hex_key=hex_key)))
    typer.echo("released" if entry else "the key is not parked; nothing to do")


@app.command("codec-server")
def codec_server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8081, help="TCP port to listen on."),
) -> None:
    """Serve the Temporal codec server protocol, so the UI and `temporal` read encrypted payloads.

    Uses the payload encryption keys of the settings; point the UI's codec
    endpoint or `temporal ... --codec-endpoint` at it.
    """
    from relayflow.temporal.codec_server import CodecServer  # noqa: PLC0415
    from relayflow.temporal.payload_codec import payload_codec  # noqa: PLC0415

    settings = load_settings()
    _configure_logging(settings)
    codec = payload_codec(settings)
    if codec is None:
        typer.echo("relayflow: the codec server needs RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS or "
                   "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE", err=True)
        raise typer.Exit(2)
    token = settings.codec_server_token
    try:
        server = CodecServer(codec, host=host, port=port,
                             token=None if token is None else token.get_secret_value(),
                             origins=settings.codec_server_allowed_origins)
    except OSError as error:
        typer.echo(f"relayflow: cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    logging.getLogger(__name__).info(
        "codec server on %s (keys %s, encrypting with %s; %s; CORS for %s); "
        "temporal workflow show --codec-endpoint %s ...", server.url, ", ".join(codec.key_ids),
        codec.active_key_id, "bearer token required" if token else "no authentication",
        ", ".join(sorted(settings.codec_server_allowed_origins)) or "no origin", server.url)
    # serve_forever runs here; shutdown must come from another thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.shutdown()  # returns at once once serve_forever has ended
    logging.getLogger(__name__).info("codec server stopped")


@app.command()
def verify(
    key_prefix: str = typer.Option("", help="Only keys starting with this (one run's records)."),
    wait: float = typer.Option(0.0, help="Seconds to give running flows to finish first."),
) -> None:
    """Check the invariants on Kafka, Temporal and the store; exit 1 on any violation."""
    from relayflow.operate.verify import verify_until_settled  # noqa: PLC0415

    report = asyncio.run(verify_until_settled(load_settings(), key_prefix=key_prefix,
                                              wait_seconds=wait))
    typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def demo(
    timeout: float = typer.Option(120.0, help="Seconds to wait for every outcome."),
    *,
    with_console: bool | None = typer.Option(
        None, "--console/--no-console",
        help="Serve the web console too (a demo user is printed) and keep it up until Ctrl-C; "
             "default: when run from a terminal."),
) -> None:
    """Start the local stack, run bridge and worker, send sample orders, show outcomes."""
    import sys  # noqa: PLC0415

    if with_console is None:  # scripts and CI get a demo that ends by itself
        with_console = sys.stdin.isatty() and sys.stdout.isatty()
        if not with_console:
            typer.echo("no terminal: the web console is not served "
                       "(`relayflow demo --console` serves it, with a demo sign-in)")
    from rich.console import Console  # noqa: PLC0415

    from relayflow import devstack  # noqa: PLC0415
    from relayflow.devstack.demo import run_demo, where_to_look  # noqa: PLC0415
    from relayflow.observability.monitoring import monitored  # noqa: PLC0415
    from relayflow.reference.app import APP  # noqa: PLC0415
    from relayflow.runtime.bootstrap import running  # noqa: PLC0415

    settings = load_settings()
    console = Console()
    console.rule("relayflow demo")
    devstack.up(settings)
    log_file = settings.data_dir / "demo.log"
    # Bridge and worker log to a file so the live table stays readable.
    from relayflow.observability.logs import configure_logging  # noqa: PLC0415

    configure_logging(settings, filename=str(log_file))
    console.print(f"bridge and worker running in this process; their log: {log_file}")

    from relayflow.console.demo import demo_console  # noqa: PLC0415

    def verdict(ok: bool) -> bool:  # noqa: FBT001 - one flag, said once
        console.print()
        console.print("[green]every expected outcome arrived[/green]" if ok
                      else "[red]some outcomes are missing or unexpected[/red]")
        return ok

    async def main() -> bool:
        try:
            async with monitored(settings, "bridge_http_port") as monitoring, running(
                    settings, APP, monitoring=monitoring) as services, \
                    contextlib.AsyncExitStack() as extra:
                for line in where_to_look(settings, monitoring.endpoints.port):
                    console.print(line)
                web = (await extra.enter_async_context(demo_console(settings, console.print))
                       if with_console else None)
                demo = asyncio.create_task(run_demo(settings, wait_seconds=timeout,
                                                    console=console))
                # A service that dies ends the demo at once, with its error, not a timeout.
                await asyncio.wait([demo, *services], return_when=asyncio.FIRST_COMPLETED)
                if demo.done():
                    ok = verdict(demo.result())
                    if web is not None:
                        await web.linger(services)
                    return ok
                demo.cancel()
        except Exception as error:  # noqa: BLE001 - reported, and the demo fails
            console.print(f"[red]a service stopped: {error!r}[/red]")
        return verdict(False)

    ok = asyncio.run(main())
    console.print("the stack keeps running: `relayflow dev status`, `relayflow dev down`")
    raise typer.Exit(0 if ok else 1)


class _DocumentFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


@app.command()
def asyncapi(
    app_spec: str | None = typer.Option(None, "--app", help=_APP_HELP),
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write the document to this file (default: stdout)."),
    document_format: _DocumentFormat | None = typer.Option(
        None, "--format", help="yaml or json (default: json for a .json output, else yaml)."),
    *,
    defaults: bool = typer.Option(
        False, "--defaults",
        help="Describe a deployment with default settings, ignoring RELAYFLOW_* variables "
             "(what the committed docs/asyncapi.yaml holds)."),
    serve: bool = typer.Option(
        False, "--serve",
        help="Serve it as an HTML page (and /asyncapi.yaml, /asyncapi.json) until stopped."),
    host: str = typer.Option("127.0.0.1", help="Interface --serve listens on."),
    port: int = typer.Option(8090, help="TCP port --serve listens on (0: any free one)."),
) -> None:
    """Write the application's Kafka contract as an AsyncAPI 3.0 document, or serve it as HTML.

    Every topic the bridge and worker read or write (inputs, outcomes, dead
    letters, parked keys), with the .avsc schemas as payloads, the key, the
    headers and the content type; servers, consumer group and framing from
    the settings.
    """
    from relayflow.asyncapi.document import asyncapi_document, to_json, to_yaml  # noqa: PLC0415

    settings = Settings.model_construct() if defaults else load_settings()
    if app_spec:
        settings = settings.model_copy(update={"app": app_spec})
    document = asyncapi_document(_application(settings.app), settings)
    if document_format is None:
        json_output = output is not None and output.suffix == ".json"
        document_format = _DocumentFormat.JSON if json_output else _DocumentFormat.YAML
    text = (to_json if document_format is _DocumentFormat.JSON else to_yaml)(document)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    elif not serve:
        typer.echo(text, nl=False)
    if serve:
        _serve_asyncapi(document, host, port)


def _serve_asyncapi(document: dict[str, Any], host: str, port: int) -> None:
    from relayflow.asyncapi.site import AsyncApiSite  # noqa: PLC0415

    try:
        site = AsyncApiSite(document, host=host, port=port)
    except OSError as error:
        typer.echo(f"relayflow: cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"AsyncAPI document of {document['info']['title']} on {site.url} (Ctrl-C stops)")
    # serve_forever runs here; shutdown must come from another thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=site.shutdown).start())
    with contextlib.suppress(KeyboardInterrupt):
        site.serve_forever()


_mount_dev()
_register_operator_commands(app)
