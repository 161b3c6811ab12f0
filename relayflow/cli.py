"""The ``relayflow`` command line: dev stack, worker, bridge, demo, tooling.

Heavy modules are imported inside each command so ``relayflow --help`` stays
fast and a command only pays for what it uses.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import typer

from relayflow.settings import Settings

__all__ = ["app"]

app = typer.Typer(
    name="relayflow",
    help="Kafka events in, durable Temporal workflows in the middle, outcome events out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
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


@app.command()
def worker() -> None:
    """Run the Temporal worker: every workflow and activity of relayflow."""
    from relayflow.worker import run_worker  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings)
    _run_until_signalled(lambda stop: run_worker(settings, stop=stop))


@app.command()
def bridge() -> None:
    """Run the Kafka → Temporal bridge (FastStream consumer, DLQ producer)."""
    from bridge.app import run_bridge  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings)
    _run_until_signalled(lambda stop: run_bridge(settings, stop=stop))


@app.command()
def run() -> None:
    """Run bridge and worker in one process (handy for the demo and local work)."""
    from bridge.app import run_bridge  # noqa: PLC0415
    from relayflow.worker import run_worker  # noqa: PLC0415

    settings = Settings()
    _configure_logging(settings)

    async def both(stop: asyncio.Event) -> None:
        await asyncio.gather(run_worker(settings, stop=stop), run_bridge(settings, stop=stop))

    _run_until_signalled(both)


@app.command()
def approvals() -> None:
    """List orders waiting for a person's approval: who must decide, since when, until when."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from relayflow.approvals import pending_approvals  # noqa: PLC0415
    from relayflow.temporal import connect  # noqa: PLC0415

    settings = Settings()

    async def load() -> list[tuple[str, ...]]:
        client = await connect(settings)
        return [
            (p.workflow_id, p.state.approval_id, p.state.approver,
             "yes" if p.state.escalated else "no",
             f"{p.state.waiting_since:%Y-%m-%d %H:%M:%S}" if p.state.waiting_since else "-",
             f"{p.state.deadline:%Y-%m-%d %H:%M:%S}" if p.state.deadline else "-")
            for p in await pending_approvals(client)
        ]

    rows = asyncio.run(load())
    table = Table(title=f"pending approvals ({len(rows)}); answer with ApprovalDecided "
                        "on approvals.decisions")
    for column in ("workflow", "approval id", "waiting for", "escalated", "since (UTC)",
                   "deadline (UTC)"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command("batch-failures")
def batch_failures(batch_id: str = typer.Argument(help="The batch's id.")) -> None:
    """List every failed item of a batch with its reason (BatchCompleted's failed_items_ref)."""
    from activities.store import Store  # noqa: PLC0415

    settings = Settings()
    store = Store(settings.store_path, card_limit_cents=settings.card_limit_cents)
    failures = store.failed_items(batch_id)
    for item_id, reason in failures:
        typer.echo(f"{item_id}\t{reason}")
    typer.echo(f"{len(failures)} failed item(s) in batch {batch_id}", err=True)


@app.command()
def demo(
    timeout: float = typer.Option(120.0, help="Seconds to wait for every outcome."),
) -> None:
    """Start the local stack, run bridge and worker, send sample orders, show outcomes."""
    from rich.console import Console  # noqa: PLC0415

    from bridge.app import run_bridge  # noqa: PLC0415
    from relayflow import devstack  # noqa: PLC0415
    from relayflow.demo import run_demo  # noqa: PLC0415
    from relayflow.worker import run_worker  # noqa: PLC0415

    settings = Settings()
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

    async def main() -> bool:
        stop = asyncio.Event()
        services = [
            asyncio.create_task(run_worker(settings, stop=stop), name="worker"),
            asyncio.create_task(run_bridge(settings, stop=stop), name="bridge"),
        ]
        demo = asyncio.create_task(run_demo(settings, wait_seconds=timeout, console=console))
        try:
            # A service that dies ends the demo at once, with its error, instead of a timeout.
            await asyncio.wait([demo, *services], return_when=asyncio.FIRST_COMPLETED)
            if not demo.done():
                demo.cancel()
                failed = next(task for task in services if task.done())
                console.print(f"[red]{failed.get_name()} stopped: {failed.exception()!r}[/red]")
                return False
            return demo.result()
        finally:
            stop.set()
            await asyncio.gather(*services, return_exceptions=True)

    ok = asyncio.run(main())
    console.print()
    console.print(
        "[green]every expected outcome arrived[/green]" if ok
        else "[red]some outcomes are missing or unexpected[/red]"
    )
    console.print("the stack keeps running: `relayflow dev status`, `relayflow dev down`")
    raise typer.Exit(0 if ok else 1)


_mount_dev()
