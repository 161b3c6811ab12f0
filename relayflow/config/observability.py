"""Observability settings: logs, traces, metrics, and the HTTP endpoints of bridge and worker."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from relayflow.config.base import EnvSettings

__all__ = ["ObservabilitySettings"]


class ObservabilitySettings(EnvSettings):
    """Observability: logs, traces, metrics, and the HTTP endpoints of bridge and worker.

    Attributes:
        log_level: Python logging level name.
        log_format: ``json`` (one object a line) or ``console`` (readable lines);
            unset: ``json`` unless stderr is a terminal (``relayflow.observability.logs``).
        tracing: Export OpenTelemetry spans (``relayflow.observability.tracing``), configured by
            the standard ``OTEL_*`` variables; off by default, costing nothing.
        metrics: Count relayflow's metrics and serve them on ``/metrics``; off,
            the bridge and the worker count nothing and ``/metrics`` is not
            served (``/health/*`` still are).
        bridge_http_port: Port of the bridge's HTTP endpoints (``/metrics``,
            ``/health/live``, ``/health/ready``); ``relayflow run`` serves the
            worker's there too. 0 picks a free port (logged); -1 serves none.
        worker_http_port: Port of the worker's HTTP endpoints, as ``bridge_http_port``.
        http_host: Address those endpoints listen on.
        temporal_metrics_port: Port of the Temporal SDK's own Prometheus
            endpoint (``temporal_*`` metrics, served by the SDK's runtime on
            ``http_host``) in bridge and worker processes; -1 serves none.
        ready_outage_grace_seconds: ``/health/ready`` answers 503 once an
            outage of a dependency (Temporal, Kafka, the schema registry) has
            held records or outcomes back for this long.
    """

    log_level: str = "INFO"
    log_format: Literal["json", "console"] | None = None
    tracing: bool = False
    metrics: bool = True
    bridge_http_port: int = Field(default=9400, ge=-1, le=65535)
    worker_http_port: int = Field(default=9401, ge=-1, le=65535)
    http_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other hosts
    temporal_metrics_port: int = Field(default=9402, ge=-1, le=65535)
    ready_outage_grace_seconds: float = Field(default=30.0, ge=0)

    @field_validator("temporal_metrics_port")
    @classmethod
    def _fixed_port(cls, value: int) -> int:
        if value == 0:
            raise ValueError("the Temporal SDK does not tell which port it picked: "
                             "give a port, or -1 for none")
        return value
