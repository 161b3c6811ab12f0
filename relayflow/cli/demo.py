"""``relayflow demo``: the local stack, bridge and worker, the application's demo, its outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from relayflow.cli.dev import dev_decision_keys, record_stack
from relayflow.cli.options import APP, configure_logging, configured

if TYPE_CHECKING:
    from rich.console import Console

    from relayflow.application import Application
    from relayflow.config.settings import Settings

__all__ = ["register"]


def demo(
    timeout: float = typer.Option(120.0, help="Seconds to wait for every outcome."),
    *,
    with_console: bool | None = typer.Option(
        None, "--console/--no-console",
        help="Serve the web console too (a demo user is printed) and keep it up until Ctrl-C; "
             "default: when run from a terminal."),
    app_spec: str | None = APP,
    beside_specs: list[str] = typer.Option(
        [], "--with", metavar="MODULE:ATTRIBUTE",
        help="Another application to run beside it (repeatable): its own bridge and worker "
             "(task queue and consumer group suffixed with its name) and its demo, if any."),
) -> None:
    """Start the local stack, run bridge and worker, run the application's demo, show outcomes.

    The reference application's demo sends sample orders and a batch; an
    application without a demo (no ``Demo`` extension) says so (exit 1, like
    the other commands an application's extension serves). Applications
    named with ``--with`` run in the same process on their own task queue and
    consumer group, their demos at the same time (``make demo`` adds the carts
    example, whose checkouts the reference order saga takes).
    """
    from relayflow.devstack.demo import Demo, topics_of, where_to_look  # noqa: PLC0415
    from relayflow.operate.errors import NotFound  # noqa: PLC0415

    settings, served = configured(app_spec)
    app_demo = served.extension(Demo)
    if app_demo is None:
        raise NotFound(f"application {served.name!r} has no demo")
    others = _beside(settings, beside_specs)
    if with_console is None:  # scripts and CI get a demo that ends by itself
        with_console = sys.stdin.isatty() and sys.stdout.isatty()
        if not with_console:
            typer.echo("no terminal: the web console is not served "
                       "(`relayflow demo --console` serves it, with a demo sign-in)")
    from rich.console import Console  # noqa: PLC0415

    from relayflow import devstack  # noqa: PLC0415
    from relayflow.observability.monitoring import monitored  # noqa: PLC0415
    from relayflow.runtime.bootstrap import running  # noqa: PLC0415

    console = Console()
    console.rule("relayflow demo")
    devstack.up(settings, topics_of(served.all_topics(),
                                    *(other.all_topics() for _, other in others)))
    record_stack(settings)  # `relayflow dev status` / `down` find it from any folder
    dev_decision_keys(settings.data_dir, served)  # before the worker reads the registry
    log_file = settings.data_dir / "demo.log"
    # Bridge and worker log to a file so the live table stays readable.
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
                    settings, served, monitoring=monitoring) as own, \
                    contextlib.AsyncExitStack() as extra:
                for line in where_to_look(settings, monitoring.endpoints.port):
                    console.print(line)
                services = [*own, *await _running_beside(others, extra, console)]
                web = (await extra.enter_async_context(demo_console(settings, console.print))
                       if with_console else None)
                demo: asyncio.Future[list[bool]] = asyncio.ensure_future(asyncio.gather(
                    app_demo.run(settings, wait_seconds=timeout, console=console),
                    *(found.run(other_settings, wait_seconds=timeout, console=console)
                      for other_settings, other in others
                      if (found := other.extension(Demo)) is not None)))
                # A service that dies ends the demo at once, with its error, not a timeout.
                waited: list[asyncio.Future[Any]] = [demo, *services]
                await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
                if demo.done():
                    ok = verdict(all(demo.result()))
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


def _beside(settings: Settings, specs: Sequence[str]) -> list[tuple[Settings, Application]]:
    """The applications ``--with`` names, each with its settings (``beside``)."""
    from relayflow.application import load_application  # noqa: PLC0415
    from relayflow.devstack.demo import beside  # noqa: PLC0415

    return [(beside(settings, spec, other.name), other)
            for spec in specs for other in [load_application(spec)]]


async def _running_beside(others: Sequence[tuple[Settings, Application]],
                          stack: contextlib.AsyncExitStack, console: Console,
                          ) -> list[asyncio.Task[None]]:
    """Bridge and worker of each of ``others`` running until ``stack`` closes; their tasks."""
    from relayflow.runtime.bootstrap import running  # noqa: PLC0415

    tasks: list[asyncio.Task[None]] = []
    for other_settings, other in others:
        tasks += await stack.enter_async_context(running(other_settings, other))
        console.print(f"{other.name}: its bridge and worker beside it, on task queue "
                      f"{other_settings.task_queue}")
    return tasks


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command()(demo)
