"""``relayflow demo``: an application's demo, with bridge and worker running in this process.

``relayflow demo`` brings the local stack up, runs the configured
application's bridge and worker in its own process and hands over to the
application's ``Demo`` extension, which sends its events and shows their
outcomes (the reference application's: ``relayflow.reference.demo``). An
application without one has no demo; the command says so.

``relayflow demo --with module:attribute`` runs another application beside
it, as a second team's deployment would: its own bridge and worker on a task
queue and consumer group of its own (``beside``), and its demo too, at the
same time. The two meet only on Kafka topics (the carts example hands its
orders to the reference order saga that way: ``make demo`` runs both).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from rich.console import Console

from relayflow.config.settings import Settings
from schemas.topics import Topic

__all__ = ["Demo", "beside", "topics_of", "where_to_look"]


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


def beside(settings: Settings, app_spec: str, name: str) -> Settings:
    """The settings of application ``name`` run beside the configured one in one process.

    Its own task queue and consumer group (the configured ones plus ``-<name>``),
    so neither takes the other's tasks or records; no endpoints of its own
    (the process's are the configured application's, and two cannot share a port).

    Args:
        settings: The configured application's.
        app_spec: The other application, ``module:attribute``.
        name: Its ``Application.name``.
    """
    return settings.model_copy(update={
        "app": app_spec, "task_queue": f"{settings.task_queue}-{name}",
        "kafka_consumer_group": f"{settings.kafka_consumer_group}-{name}",
        "bridge_http_port": -1, "worker_http_port": -1, "temporal_metrics_port": -1})


def topics_of(*topic_lists: Iterable[Topic]) -> list[Topic]:
    """Every topic of several applications once (the first declaration of a shared one wins)."""
    found: dict[str, Topic] = {}
    for topics in topic_lists:
        for topic in topics:
            found.setdefault(topic.name, topic)
    return list(found.values())


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
