"""``relayflow console``: serve the web console; ``console hash-password`` for its users file."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from relayflow.cli.options import APP, configure_logging, configured, until_interrupted

if TYPE_CHECKING:
    from relayflow.config.settings import Settings

__all__ = ["app", "console_starter"]

app = typer.Typer(help="The web console: dead letters and parked keys, and the pages the "
                       "application adds (the reference app's approvals inbox, orders, "
                       "batches); see the docs, Operating: the console.")


def console_starter(settings: Settings,
                    ) -> Callable[[], contextlib.AbstractAsyncContextManager[str]]:
    """``running_console`` for these settings, its users loaded now (bad ones stop us here)."""
    from relayflow.console import load_users, running_console  # noqa: PLC0415

    users = load_users(settings)
    return lambda: running_console(settings, users=users)


@app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Interface (default RELAYFLOW_CONSOLE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default RELAYFLOW_CONSOLE_PORT)."),
    app_spec: str | None = APP,
) -> None:
    """Serve the web console (reads Temporal and Kafka; writes decisions and DLQ replays)."""
    if ctx.invoked_subcommand is not None:
        return
    overrides = {k: v for k, v in (("console_host", host), ("console_port", port))
                 if v is not None}
    settings, _ = configured(app_spec, **overrides)
    configure_logging(settings)
    starter = console_starter(settings)

    async def serve(stop: asyncio.Event) -> None:
        async with starter() as url:
            typer.echo(f"relayflow console on {url} (Ctrl-C stops it)")
            await stop.wait()

    until_interrupted(serve)


@app.command("hash-password")
def hash_password() -> None:
    """Print an argon2 hash of a password for the console's users file.

    Asks for the password (twice) on a terminal; otherwise reads one line from standard input.
    """
    from relayflow.console import hash_password as hashed  # noqa: PLC0415

    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        typer.echo("relayflow: empty password", err=True)
        raise typer.Exit(2)
    typer.echo(hashed(password))
