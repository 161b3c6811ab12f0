"""What the commands share: ``--app``, ``--output``, ``--timeout``, and running until Ctrl-C.

Every command that serves an application takes ``--app`` the same way
(``APP``) and turns it into settings and a loaded ``Application`` with
``configured``: an application that cannot be imported, or is not an
``Application``, ends the command with one line and exit status 2.
Heavy modules are imported inside functions, so ``relayflow --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from relayflow.config.settings import SettingError, Settings, load_settings

if TYPE_CHECKING:
    from relayflow.application import Application
    from relayflow.observability.http_server import BackgroundHTTPServer

__all__ = [
    "APP",
    "OUTPUT",
    "TIMEOUT",
    "ApplicationRefused",
    "Output",
    "application",
    "configure_logging",
    "configured",
    "emit_json",
    "seconds_of",
    "serve_until_terminated",
    "until_interrupted",
]

T = TypeVar("T")


class Output(StrEnum):
    """How a command prints: ``text`` for people (rich), ``json`` for scripts."""

    TEXT = "text"
    JSON = "json"


APP = typer.Option(None, "--app", metavar="MODULE:ATTRIBUTE",
                   help="The application, as module:attribute (default: RELAYFLOW_APP, else "
                        "relayflow's own orders, approvals and batches).")
OUTPUT = typer.Option(Output.TEXT, "--output", "-o",
                      help="text (for people) or json (for scripts: one object, or one per line "
                           "for streams).")
TIMEOUT = typer.Option(None, "--timeout", min=0.001,
                       help="Seconds to wait for each answer of Kafka, Temporal, a worker or a "
                            "metrics endpoint (default RELAYFLOW_OPERATOR_TIMEOUT_SECONDS, 10); "
                            "no answer: exit 3.")


class ApplicationRefused(SettingError):
    """``--app`` / ``RELAYFLOW_APP`` names no usable application (one line, exit 2)."""


def application(spec: str) -> Application:
    """The application ``spec`` (``module:attribute``) names.

    Args:
        spec: ``--app``'s value, or ``RELAYFLOW_APP``'s.

    Raises:
        ApplicationRefused: The module cannot be imported, or the attribute is
            missing or not an ``Application``; the message names ``spec``.
    """
    from relayflow.application import load_application  # noqa: PLC0415 - imports the app's code

    try:
        return load_application(spec)
    except (ImportError, SyntaxError, TypeError, ValueError) as error:
        raise ApplicationRefused(f"--app / RELAYFLOW_APP {spec}: {error}") from None


def configured(app_spec: str | None, **overrides: object) -> tuple[Settings, Application]:
    """Settings with ``--app`` (and ``overrides``) applied, and the application they name.

    The application is loaded here, before anything connects; the settings'
    ``app`` names it, so services reading the settings serve the same one.

    Args:
        app_spec: ``--app``'s value (None: the setting, ``RELAYFLOW_APP``).
        overrides: Other settings the command's options give.

    Raises:
        SettingError: A setting is bad, or the application is refused (``ApplicationRefused``).
    """
    settings = load_settings(**overrides, **({"app": app_spec} if app_spec else {}))
    return settings, application(settings.app)


def seconds_of(timeout: float | None, settings: Settings) -> float:
    """``--timeout`` when given, else the setting."""
    return timeout if timeout is not None else settings.operator_timeout_seconds


def emit_json(value: Any) -> None:
    """Print one JSON document (one line) on stdout."""
    typer.echo(json.dumps(value, default=str))


def configure_logging(settings: Settings, filename: str | None = None) -> None:
    """The process's logging as the settings say (``relayflow.observability.logs``)."""
    from relayflow.observability.logs import configure_logging as configure  # noqa: PLC0415

    configure(settings, filename=filename)


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


def serve_until_terminated(server: BackgroundHTTPServer) -> None:
    """Run ``server.serve_forever()`` here until Ctrl-C or SIGTERM, then shut it down.

    ``serve_forever`` blocks this thread, so SIGTERM's ``shutdown`` runs on another.
    """
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.shutdown()  # returns at once once serve_forever has ended
