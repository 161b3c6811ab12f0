"""``relayflow worker``, ``bridge`` and ``run``: the application's services."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import typer

from relayflow.cli.console import console_starter
from relayflow.cli.options import APP, configure_logging, configured, until_interrupted

if TYPE_CHECKING:
    from relayflow.application import Application
    from relayflow.config.settings import Settings

__all__ = ["register"]


def _checked(app_spec: str | None) -> tuple[Settings, Application]:
    """Settings and application, with every setting that can be checked offline checked.

    Raises:
        SettingError: Unusable payload keys, Kafka TLS files or tracing exporter:
            the process stops before anything connects.
    """
    from relayflow.observability.tracing import tracer_provider  # noqa: PLC0415
    from relayflow.runtime.clients import kafka_clients  # noqa: PLC0415

    settings, app = configured(app_spec)
    from relayflow.temporal.payload_codec import payload_codec  # noqa: PLC0415

    payload_codec(settings)  # unusable keys raise SettingError before anything connects
    kafka_clients(settings)  # loads the TLS files now: a bad key stops us before Temporal
    tracer_provider(settings)  # a bad OTEL_TRACES_EXPORTER stops us here too
    return settings, app


def worker(app_spec: str | None = APP) -> None:
    """Run the Temporal worker: the application's workflows and activities."""
    from relayflow.runtime.bootstrap import run_worker  # noqa: PLC0415

    settings, app = _checked(app_spec)
    configure_logging(settings)
    until_interrupted(lambda stop: run_worker(settings, app, stop=stop))


def bridge(app_spec: str | None = APP) -> None:
    """Run the Kafka → Temporal bridge (FastStream consumer, DLQ producer)."""
    from relayflow.runtime.bootstrap import run_bridge  # noqa: PLC0415

    settings, app = _checked(app_spec)
    configure_logging(settings)
    until_interrupted(lambda stop: run_bridge(settings, app, stop=stop))


def run(
    app_spec: str | None = APP,
    *,
    with_console: bool = typer.Option(False, "--console",
                                      help="Also serve the web console (RELAYFLOW_CONSOLE_*)."),
) -> None:
    """Run bridge and worker in one process (handy for the demo and local work)."""
    from relayflow.runtime.bootstrap import running  # noqa: PLC0415

    settings, app = _checked(app_spec)
    configure_logging(settings)
    console = console_starter(settings) if with_console else None

    async def both(stop: asyncio.Event) -> None:
        async with running(settings, app) as services, contextlib.AsyncExitStack() as extra:
            if console is not None:
                await extra.enter_async_context(console())
            # A service that dies ends the process with its error, instead of running half.
            waiting = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiting, *services], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()

    until_interrupted(both)


def register(app: typer.Typer) -> None:
    """Add ``worker``, ``bridge`` and ``run`` to ``app``."""
    for command in (worker, bridge, run):
        app.command()(command)
