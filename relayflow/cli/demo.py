"""``relayflow demo``: the local stack, bridge and worker, the application's demo, its outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import typer

from relayflow.cli.dev import dev_decision_keys, record_stack
from relayflow.cli.options import APP, configure_logging, configured

__all__ = ["register"]


def demo(
    timeout: float = typer.Option(120.0, help="Seconds to wait for every outcome."),
    *,
    with_console: bool | None = typer.Option(
        None, "--console/--no-console",
        help="Serve the web console too (a demo user is printed) and keep it up until Ctrl-C; "
             "default: when run from a terminal."),
    app_spec: str | None = APP,
) -> None:
    """Start the local stack, run bridge and worker, run the application's demo, show outcomes.

    The reference application's demo sends sample orders and a batch; an
    application without a demo (no ``Demo`` extension) says so (exit 1, like
    the other commands an application's extension serves).
    """
    from relayflow.devstack.demo import Demo, where_to_look  # noqa: PLC0415
    from relayflow.operate.errors import NotFound  # noqa: PLC0415

    settings, served = configured(app_spec)
    app_demo = served.extension(Demo)
    if app_demo is None:
        raise NotFound(f"application {served.name!r} has no demo")
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
    devstack.up(settings, served.all_topics())
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
                    settings, served, monitoring=monitoring) as services, \
                    contextlib.AsyncExitStack() as extra:
                for line in where_to_look(settings, monitoring.endpoints.port):
                    console.print(line)
                web = (await extra.enter_async_context(demo_console(settings, console.print))
                       if with_console else None)
                demo = asyncio.create_task(app_demo.run(settings, wait_seconds=timeout,
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


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command()(demo)
