"""``relayflow demo``: an application's demo, with bridge and worker running in this process.

``relayflow demo`` brings the local stack up, runs the configured
application's bridge and worker in its own process and hands over to the
application's ``Demo`` extension, which sends its events and shows their
outcomes (the reference application's: ``relayflow.reference.demo``). An
application without one has no demo; the command says so.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from rich.console import Console

from relayflow.config.settings import Settings

__all__ = ["Demo", "where_to_look"]


@runtime_checkable
class Demo(Protocol):
    """An application's demo (one of ``Application.extensions``)."""

    async def run(self, settings: Settings, *, wait_seconds: float, console: Console) -> bool:
        """Send the demo's events to the running system and show what comes out.

        Args:
            settings: Where Kafka and Temporal are; the bridge and worker run
                against the same settings.
            wait_seconds: How long to wait for every outcome.
            console: Where to show them.

        Returns:
            True when everything expected arrived and nothing unexpected did.
        """
        ...


def where_to_look(settings: Settings, http_port: int | None) -> list[str]:
    """Where an operator looks while the demo runs: metrics, health, traces, the Temporal UI.

    Args:
        settings: The demo's settings (ports, tracing).
        http_port: The port the process's endpoints were bound to; None if not served.
    """
    host = "127.0.0.1" if settings.http_host in {"0.0.0.0", "::", ""} else settings.http_host  # noqa: S104
    lines = []
    if http_port is not None:
        base = f"http://{host}:{http_port}"
        lines += [f"metrics: {base}/metrics",
                  f"health:  {base}/health/live  {base}/health/ready"]
    if settings.temporal_metrics_port >= 0:
        lines.append(f"Temporal SDK metrics: http://{host}:{settings.temporal_metrics_port}/metrics")
    if settings.tracing:
        exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
        endpoint = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                    or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                    or "the OTLP default (localhost:4317)")
        lines.append(f"traces:  exported ({exporter}) to {endpoint}")
    else:
        lines.append("traces:  off (RELAYFLOW_TRACING=true and OTEL_* turn them on)")
    lines.append(f"Temporal UI: {settings.temporal_ui_url}")
    return lines
