"""What an operator's tools read from a running process: metrics and health over HTTP.

One HTTP server per process (aiohttp, on the process's own event loop):

* ``GET /metrics``: relayflow's metrics in the Prometheus text format, from
  the process's own ``CollectorRegistry`` (never the global one, so tests and
  embedding applications stay isolated); scrape-time values (consumer lag)
  are refreshed first.
* ``GET /health/live``: 200 while the event loop runs (it answers the request).
* ``GET /health/ready``: 200 when every service of the process is ready, else
  503; both with ``{"ready": ..., "checks": {"bridge": "ok" | why not, ...}}``.

With ``RELAYFLOW_METRICS`` off the services get metrics whose instruments
count nothing (``Endpoints.metrics``) and ``/metrics`` is not served; the
health endpoints are.

The Temporal SDK's own metrics (``temporal_*``) come from its runtime's
Prometheus exporter on a port of their own (``temporal_runtime``): the SDK
serves them, relayflow only configures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics import MetricWrapperBase
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.metrics import WorkerMetrics
from bridge.app import BridgeStatus
from bridge.metrics import BridgeMetrics
from relayflow.config.settings import SettingError, Settings
from relayflow.observability.reach import KafkaReach, Settable

__all__ = ["KAFKA_REACHABLE", "Check", "Endpoints", "Monitoring", "WorkerProbe",
           "bridge_readiness", "monitored", "temporal_runtime"]

KAFKA_REACHABLE = "relayflow_kafka_reachable"
"""The gauge of ``Endpoints.kafka_reachable``."""

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: None when ready, else a short reason."""

_CHECK_TIMEOUT_S = 5.0  # a check that hangs (a dependency black-holing packets) counts as failed
_PROBE_TIMEOUT = timedelta(seconds=2)

_Metrics = TypeVar("_Metrics", BridgeMetrics, WorkerMetrics)


class _Uncounted:
    """Stands in for every instrument (counter, gauge, histogram, child) and records nothing."""

    def labels(self, *_: object) -> _Uncounted:
        return self

    def inc(self, _: float = 1) -> None:
        pass

    dec = set = observe = inc

    def remove(self, *_: object) -> None:
        pass

    def time(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    track_inprogress = time


_UNCOUNTED = _Uncounted()


@dataclass
class Endpoints:
    """The process's ``/metrics``, ``/health/live`` and ``/health/ready``.

    Attributes:
        registry: What ``/metrics`` serves; the services register their metrics here.
        checks: Readiness check per service name (``bridge``, ``worker``).
        refreshes: Awaited before each scrape (scrape-time metrics).
        port: The bound port once serving (useful when 0 was asked for).
        counting: Metrics on (``RELAYFLOW_METRICS``); off, ``/metrics`` is not served.
    """

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    checks: dict[str, Check] = field(default_factory=dict)
    refreshes: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    port: int | None = None
    counting: bool = True
    _reachable: Gauge | None = field(default=None, init=False, repr=False)

    def metrics(self, kind: type[_Metrics]) -> _Metrics:
        """A service's metrics (``BridgeMetrics``, ``WorkerMetrics``) on ``registry``.

        With ``counting`` off, every instrument of theirs is one that records
        nothing (and they are registered nowhere that is served).
        """
        if self.counting:
            return kind(self.registry)
        metrics = kind()
        for name, value in vars(metrics).items():
            if isinstance(value, MetricWrapperBase):
                setattr(metrics, name, _UNCOUNTED)
        return metrics

    def kafka_reachable(self, service: str) -> Settable:
        """``relayflow_kafka_reachable{service}``, the gauge ``KafkaReach`` sets.

        1 while ``service``'s Kafka client reaches the cluster, 0 while it does
        not. One gauge for the process (``relayflow run`` serves both services); with
        ``counting`` off, one that records nothing.

        Args:
            service: ``bridge`` or ``worker``.
        """
        if not self.counting:
            return _UNCOUNTED
        if self._reachable is None:
            self._reachable = Gauge(
                KAFKA_REACHABLE, "1 while the service's Kafka client reaches the cluster "
                "(a broker answered its last metadata request), else 0.", ["service"],
                registry=self.registry)
        return self._reachable.labels(service)

    def application(self) -> web.Application:
        """The aiohttp application of the three endpoints."""
        exposition = make_aiohttp_handler(self.registry)

        async def metrics(request: web.Request) -> web.StreamResponse:
            for refresh in self.refreshes:
                await refresh()
            return await exposition(request)

        async def live(_: web.Request) -> web.Response:
            return web.json_response({"live": True})

        async def ready(_: web.Request) -> web.Response:
            answers = await asyncio.gather(*(_run(check) for check in self.checks.values()))
            checks = {name: answer or "ok" for name, answer in zip(self.checks, answers,
                                                                  strict=True)}
            ok = bool(checks) and all(answer is None for answer in answers)
            return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

        app = web.Application()
        if self.counting:
            app.router.add_get("/metrics", metrics)
        app.router.add_get("/health/live", live)
        app.router.add_get("/health/ready", ready)
        return app

    @contextlib.asynccontextmanager
    async def serving(self, host: str, port: int, *, setting: str) -> AsyncIterator[None]:
        """Serve the endpoints on ``host:port`` while the block runs.

        Args:
            host: Address to listen on.
            port: Port to listen on; 0 picks a free one (see ``port``).
            setting: The variable that chose the port, for the error.

        Raises:
            SettingError: The port cannot be listened on (in use, not allowed).
        """
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as error:
                raise SettingError(f"{setting}: cannot listen on {host}:{port}: "
                                   f"{error.strerror or error}") from None
            self.port = int(runner.addresses[0][1])
            log.info("%shealth on http://%s:%d/health/live and /health/ready",
                     "metrics on /metrics, " if self.counting else "", host, self.port)
            yield
        finally:
            await runner.cleanup()


async def _run(check: Check) -> str | None:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            return await check()
    except TimeoutError:
        return "check timed out"


def temporal_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics on ``temporal_metrics_port``; None if -1.

    Raises:
        SettingError: The SDK could not serve on that port.
    """
    if settings.temporal_metrics_port < 0:
        return None
    address = f"{settings.http_host}:{settings.temporal_metrics_port}"
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
            bind_address=address)))
    except ValueError as error:  # the SDK says why (in use, bad address)
        raise SettingError(f"RELAYFLOW_TEMPORAL_METRICS_PORT: the Temporal SDK cannot serve "
                           f"metrics on {address}: {error}") from None
    log.info("Temporal SDK metrics on http://%s/metrics", address)
    return runtime


@dataclass
class Monitoring:
    """A process's observability: its endpoints and the Temporal runtime its clients share.

    Attributes:
        endpoints: ``/metrics`` and ``/health/*``.
        runtime: The Temporal runtime exporting the SDK's metrics; None for the default one.
    """

    endpoints: Endpoints
    runtime: Runtime | None


@contextlib.asynccontextmanager
async def monitored(settings: Settings, port_setting: str) -> AsyncIterator[Monitoring]:
    """The endpoints (unless the port is -1) and the SDK's metrics runtime, while the block runs.

    Args:
        settings: Host, ports.
        port_setting: ``bridge_http_port`` or ``worker_http_port``: which port to serve on.

    Raises:
        SettingError: A port cannot be served on.
    """
    endpoints = Endpoints(counting=settings.metrics)
    found = Monitoring(endpoints, temporal_runtime(settings))
    port: int = getattr(settings, port_setting)
    if port < 0:
        yield found
        return
    async with endpoints.serving(settings.http_host, port,
                                 setting=f"RELAYFLOW_{port_setting.upper()}"):
        yield found


def _with_kafka_reach(outages: dict[str, float], reach: KafkaReach | None) -> dict[str, float]:
    """``outages`` with Kafka's the longer of its own and the time Kafka has not answered."""
    unreachable = None if reach is None else reach.unreachable_for()
    if unreachable is None:
        return outages
    return {**outages, "kafka": max(unreachable, outages.get("kafka", 0.0))}


def _outage(outages: dict[str, float], grace: float) -> str | None:
    late = {name: seconds for name, seconds in outages.items() if seconds >= grace}
    if not late:
        return None
    return ", ".join(f"{name} failing for {seconds:.0f}s" for name, seconds in sorted(late.items()))


def bridge_readiness(status: BridgeStatus | None, grace: float,
                     kafka: KafkaReach | None = None) -> str | None:
    """Why the bridge is not ready, or None: connected, partitions assigned, no long outage.

    Args:
        status: The running bridge; None while it still waits for Temporal.
        grace: Seconds an outage may hold records back (or Kafka not answer)
            before the bridge is not ready.
        kafka: Whether its Kafka client reaches the cluster (None: not watched).
    """
    if status is None:
        return "waiting for Temporal"
    if status.fetch is None or status.consumer is None:
        return "starting"
    # An outage first: a consumer that lost its partitions in a Kafka outage says why.
    return _outage(_with_kafka_reach(status.outages(), kafka), grace) or (
        None if status.assigned else "no partitions assigned")


class WorkerProbe:
    """The worker's readiness: polling, Temporal answering, outcomes reaching Kafka.

    Kafka counts as failing while outcome publishes fail or while the outcome
    producer's client cannot reach the cluster (``kafka``), the longer of the two.

    Args:
        grace: Seconds an outage may last before the worker is not ready.

    Attributes:
        client: The Temporal client, once connected.
        worker: The worker, once built.
        metrics: Where the outcome publisher records failed publishes.
        kafka: Whether the outcome producer reaches the cluster, once started.
    """

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self.client: Client | None = None
        self.worker: Worker | None = None
        self.metrics: WorkerMetrics | None = None
        self.kafka: KafkaReach | None = None
        self._temporal_failing_since: float | None = None

    async def __call__(self) -> str | None:
        """None when ready, else why not."""
        if self.client is None:
            return "connecting to Temporal"
        if self.worker is None or not self.worker.is_running:
            return "not polling"
        outages: dict[str, float] = {}
        now = time.monotonic()
        try:
            serving = await self.client.service_client.check_health(timeout=_PROBE_TIMEOUT)
        except Exception:  # noqa: BLE001 - any failure to answer is an outage
            serving = False
        if serving:
            self._temporal_failing_since = None
        else:
            self._temporal_failing_since = self._temporal_failing_since or now
            outages["temporal"] = now - self._temporal_failing_since
        if self.metrics is not None and self.metrics.kafka_failing_since is not None:
            outages["kafka"] = now - self.metrics.kafka_failing_since
        return _outage(_with_kafka_reach(outages, self.kafka), self._grace)
