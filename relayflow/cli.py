"""The ``relayflow`` command line: dev stack, worker, bridge, demo, tooling.

Heavy modules are imported inside each command so ``relayflow --help`` stays
fast and a command only pays for what it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import typer
from typer.core import TyperGroup

from relayflow.settings import SettingError, Settings, load_settings

__all__ = ["app"]


class _Commands(TyperGroup):
    """relayflow's commands: a bad or refused setting ends one with its message, no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SettingError as error:
            typer.echo(f"relayflow: {error}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="relayflow",
    help="Kafka events in, durable Temporal workflows in the middle, outcome events out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=_Commands,
)


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


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
    from relayflow.devstack.cli import app as dev_app  # noqa: PLC0415 - keeps --help fast

    app.add_typer(dev_app, name="dev", help="Local Kafka + Temporal dev stack (no Docker).")


_APP_HELP = ("The application to run, as module:attribute (default: RELAYFLOW_APP, "
             "else relayflow's own orders, approvals and batches).")


def _settings(app_spec: str | None = None) -> Settings:
    """Settings with ``--app`` applied; the application is loaded once here to fail early."""
    from relayflow.application import load_application  # noqa: PLC0415

    settings = load_settings(**({"app": app_spec} if app_spec else {}))
    try:
        load_application(settings.app)
    except (ImportError, TypeError, ValueError) as error:
        raise typer.BadParameter(f"{settings.app}: {error}", param_hint="--app / RELAYFLOW_APP",
                                 ) from error
    settings.payload_codec()  # unusable keys raise SettingError before anything connects
    from relayflow.kafka_clients import KafkaClients  # noqa: PLC0415

    KafkaClients(settings)  # loads the TLS files now: a bad key stops us before Temporal
    return settings


@app.command()
def worker(app_spec: str | None = typer.Option(None, "--app", help=_APP_HELP)) -> None:
    """Run the Temporal worker: the application's workflows and activities."""
    from relayflow.bootstrap import run_worker  # noqa: PLC0415

    settings = _settings(app_spec)
    _configure_logging(settings)
    _run_until_signalled(lambda stop: run_worker(settings, stop=stop))


@app.command()
def bridge(app_spec: str | None = typer.Option(None, "--app", help=_APP_HELP)) -> None:
    """Run the Kafka → Temporal bridge (FastStream consumer, DLQ producer)."""
    from relayflow.bootstrap import run_bridge  # noqa: PLC0415

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
    from relayflow.bootstrap import running  # noqa: PLC0415

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
def approvals() -> None:
    """List orders waiting for a person's approval: who may decide, since when, until when.

    Also the decisions each saga refused because their sender was not asked.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.bootstrap import connect_temporal  # noqa: PLC0415
    from relayflow.pending_approvals import COLUMNS, pending_approvals  # noqa: PLC0415

    settings = load_settings()

    async def load() -> list[tuple[str, ...]]:
        client = await connect_temporal(settings)
        return [p.cells() for p in await pending_approvals(client)]

    rows = asyncio.run(load())
    table = Table(title=f"pending approvals ({len(rows)}); answer with ApprovalDecided on "
                        "approvals.decisions, decided_by one of 'may decide' or "
                        "<approver>/<person>")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command("batch-failures")
def batch_failures(batch_id: str = typer.Argument(help="The batch's id.")) -> None:
    """List every failed item of a batch with its reason (BatchCompleted's failed_items_ref)."""
    from activities.store import Store  # noqa: PLC0415

    settings = load_settings()
    store = Store(settings.store_path, card_limit_cents=settings.card_limit_cents)
    failures = store.failed_items(batch_id)
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
) -> None:
    """Dead letters (newest last) and the parked keys."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.dlq_admin import parked_keys, read_dead_letters  # noqa: PLC0415

    settings = load_settings()
    letters = asyncio.run(read_dead_letters(settings, topic or None))
    parked = asyncio.run(parked_keys(settings))
    console = Console()
    shown = letters[-limit:]
    table = Table(title=f"dead letters: {len(letters)} (showing the last {len(shown)})")
    for column in ("dlq record", "key", "reason", "event type", "source", "failed at", "error"):
        table.add_column(column)
    for d in shown:
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
) -> None:
    """One dead letter: headers, and the event if its value decodes."""
    from relayflow.dlq_admin import read_dead_letters  # noqa: PLC0415
    from schemas.codec import DecodeError  # noqa: PLC0415
    from schemas.topics import DLQ_SUFFIX  # noqa: PLC0415

    settings = load_settings()
    source = dlq_topic.removesuffix(DLQ_SUFFIX)
    letters = asyncio.run(read_dead_letters(settings, [source], partition=partition,
                                            from_offset=offset))
    found = next((d for d in letters if d.offset == offset), None)
    if found is None:
        typer.echo(f"no record at {dlq_topic}/{partition}/{offset}", err=True)
        raise typer.Exit(1)
    typer.echo(f"record   {found.coordinates}")
    typer.echo(f"key      {found.key!r}")
    for name, value in found.headers:
        typer.echo(f"header   {name}: {value.decode(errors='replace')}")
    value = found.value or b""
    try:
        event = settings.codec().decode(value)
    except (DecodeError, OSError) as error:
        typer.echo(f"value    {len(value)} bytes, not decodable ({error}): {value[:64]!r}")
    else:
        typer.echo(f"event    {event.model_dump_json(indent=2)}")


@dlq_app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(help="Source topic of the parked key, e.g. orders.events."),
    key: str = typer.Argument(help=_KEY_HELP),
    *,
    hex_key: bool = typer.Option(False, "--hex", help="KEY is hex."),
    parked_only: bool = typer.Option(
        False, help="Skip the record that parked the key; replay the ones parked after it."),
) -> None:
    """Copy a parked key's dead letters back to its topic, in order; then it flows again."""
    from relayflow.dlq_admin import replay  # noqa: PLC0415

    raw = _key(key, hex_key=hex_key)
    result = asyncio.run(replay(load_settings(), topic, raw, parked_only=parked_only))
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
) -> None:
    """Let a parked key flow again without replaying; its dead letters stay on the DLQ."""
    from relayflow.dlq_admin import release  # noqa: PLC0415

    entry = asyncio.run(release(load_settings(), topic, _key(key, hex_key=hex_key)))
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
    from relayflow.codec_server import CodecServer  # noqa: PLC0415

    settings = load_settings()
    _configure_logging(settings)
    codec = settings.payload_codec()
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
    from relayflow.verify import verify_until_settled  # noqa: PLC0415

    report = asyncio.run(verify_until_settled(load_settings(), key_prefix=key_prefix,
                                              wait_seconds=wait))
    typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def demo(
    timeout: float = typer.Option(120.0, help="Seconds to wait for every outcome."),
    *,
    with_console: bool = typer.Option(
        True, "--console/--no-console",
        help="Serve the web console too (a demo user is printed) and keep it up until Ctrl-C."),
) -> None:
    """Start the local stack, run bridge and worker, send sample orders, show outcomes."""
    from rich.console import Console  # noqa: PLC0415

    from relayflow import devstack  # noqa: PLC0415
    from relayflow.bootstrap import running  # noqa: PLC0415
    from relayflow.demo import run_demo  # noqa: PLC0415
    from relayflow.reference import APP  # noqa: PLC0415

    settings = load_settings()
    console = Console()
    console.rule("relayflow demo")
    devstack.up(settings)
    log_file = settings.data_dir / "demo.log"
    # Bridge and worker log to a file so the live table stays readable.
    logging.basicConfig(
        filename=log_file,
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    console.print(f"bridge and worker running in this process; their log: {log_file}")

    from relayflow.console.demo import demo_console  # noqa: PLC0415

    def verdict(ok: bool) -> bool:  # noqa: FBT001 - one flag, said once
        console.print()
        console.print("[green]every expected outcome arrived[/green]" if ok
                      else "[red]some outcomes are missing or unexpected[/red]")
        return ok

    async def main() -> bool:
        try:
            async with running(settings, APP) as services, contextlib.AsyncExitStack() as extra:
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


_mount_dev()
