"""The composition root: every real object relayflow runs is built here, from settings.

* Kafka clients come from one factory (``kafka_clients``), the Temporal
  client from ``connect_temporal`` (both in ``relayflow.runtime.clients``,
  re-exported here): no other module constructs a client.
* The bridge gets a ``BridgeConfig`` and connected clients; it never reads
  settings itself.
* The worker registers the application's workflows and activities plus the
  outcome publisher every application shares, and, for an application with
  endings, the ending sweep's workflows and activities and its schedule
  (``relayflow.runtime.endings``); with a claim-check store, the blob sweep's
  workflow, activity and schedule (``relayflow.runtime.claim_check``).
* ``running`` runs bridge and worker together; the CLI, the demo, the tests
  (through the pytest plugin) and the benchmarks all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.claim_check import BlobSweep
from activities.endings import EndingSweep
from activities.metrics import WorkerMetrics
from activities.outcomes import OutcomePublisher, Producer
from bridge.app import BridgeStatus, create_app, serve
from bridge.config import BridgeConfig
from bridge.metrics import BridgeMetrics
from bridge.retry import Backoff
from bridge.routes import RouteTable
from relayflow.application import Application, WorkerResources, load_application
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.kafka.schema_registry import schema_registry
from relayflow.observability.monitoring import Monitoring, WorkerProbe, bridge_readiness, monitored
from relayflow.observability.reach import KafkaReach, asking
from relayflow.runtime.claim_check import ensure_claim_check_schedule
from relayflow.runtime.clients import (
    blob_store,
    connect_temporal,
    data_converter,
    kafka_clients,
    traced,
    wait_for_temporal,
)
from relayflow.runtime.endings import ensure_ending_schedule
from relayflow.temporal.payload_codec import plaintext_window_warning
from schemas.formats import FormatCodec
from workflows.claim_check import SweepClaimCheck
from workflows.endings import EndExecution, SweepEndings
from workflows.versioning import use_versioned_workers

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = [
    "ACTIVITY_THREADS",
    "application",
    "bridge_config",
    "build_worker",
    "connect_temporal",
    "data_converter",
    "event_codec",
    "kafka_clients",
    "run_bridge",
    "run_worker",
    "running",
    "unless_stopped",
    "wait_for_temporal",
    "warn_while_plaintext_accepted",
    "worker_deployment",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

ACTIVITY_THREADS = 16
"""Threads for synchronous activities, and the worker's concurrent activity limit."""

# The Temporal SDK's advice for tracing: OpenTelemetry's context must be the same
# module inside the workflow sandbox as outside (the interceptor's spans cross it).
_SANDBOX = SandboxRestrictions.default.with_passthrough_modules("opentelemetry")


def application(settings: Settings) -> Application:
    """The application ``settings.app`` names (``module:attribute``)."""
    return load_application(settings.app)


def event_codec(settings: Settings, app: Application | None = None) -> FormatCodec:
    """The codec of ``app`` (default: the configured one), with the schema registry if set."""
    return (app or application(settings)).codec(
        schema_registry(settings), settings.schema_registry_subject_strategy)


async def _producer_once_kafka_answers(kafka: KafkaClients, stack: contextlib.AsyncExitStack,
                                       stop: asyncio.Event, backoff: Backoff | None = None,
                                       **options: Any) -> AIOKafkaProducer | None:
    """A producer started on ``stack``, waiting with backoff while Kafka does not answer.

    A bridge or worker started before Kafka (or during its restart) waits for it
    as the bridge waits for Temporal, instead of dying at its first connection.

    Returns:
        The started producer, or None when ``stop`` was set first.

    Raises:
        KafkaSecurityError: TLS or SASL refused (a setting to fix, not to wait out).
    """
    backoff = backoff or Backoff()
    failures = 0
    while True:
        try:
            producer = await stack.enter_async_context(kafka.started_producer(**options))
        except KafkaConnectionError as error:
            failures += 1
            if failures == 1:
                log.warning("Kafka at %s unavailable (%s); retrying with backoff",
                            kafka.bootstrap_servers, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.delay(failures))
            if stop.is_set():
                return None
            continue
        if failures:
            log.warning("Kafka at %s available after %d attempts",
                        kafka.bootstrap_servers, failures + 1)
        return producer


async def _watching_kafka(service: str, producer: AIOKafkaProducer, monitoring: Monitoring,
                          stack: contextlib.AsyncExitStack) -> KafkaReach:
    """Whether ``producer``'s client reaches the cluster, asked until ``stack`` closes.

    Entered after the producer, so the asking stops before the producer does.
    """
    reach = KafkaReach(asking(producer.client), monitoring.endpoints.kafka_reachable(service),
                       service)
    return await stack.enter_async_context(reach.watching())


def bridge_config(settings: Settings) -> BridgeConfig:
    """The bridge's own settings, taken from relayflow's."""
    return BridgeConfig(
        consumer_group=settings.kafka_consumer_group,
        task_queue=settings.task_queue,
        fetch_max_records=settings.bridge_batch_size,
        concurrency=settings.bridge_concurrency,
        signal_hold_seconds=settings.bridge_signal_hold_seconds,
        shutdown_seconds=settings.bridge_shutdown_seconds,
        temporal_call_seconds=settings.bridge_temporal_call_seconds,
        park_keys=settings.bridge_park_keys,
        max_payload_bytes=settings.max_payload_bytes,
        max_header_count=settings.max_header_count,
        max_header_bytes=settings.max_header_bytes,
        fetch_max_bytes=settings.max_fetch_bytes,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        session_timeout_seconds=settings.bridge_session_timeout_seconds,
    )


async def unless_stopped(work: Awaitable[_T], stop: asyncio.Event) -> _T | None:
    """``work``'s result (its error raised), or None when ``stop`` is set first (it is cancelled).

    Args:
        work: What to run.
        stop: Set it to cancel ``work``.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    return task.result()


def warn_while_plaintext_accepted(settings: Settings) -> None:
    """Log a warning line while a plaintext window (``payload_accept_plaintext_until``) is set."""
    if (warning := plaintext_window_warning(settings)) is not None:
        log.warning(warning)


async def run_bridge(settings: Settings, app: Application | None = None, *,
                     stop: asyncio.Event, routes: RouteTable | None = None,
                     tracer_provider: TracerProvider | None = None,
                     monitoring: Monitoring | None = None) -> None:
    """Run the bridge for ``app`` until ``stop`` is set; for ``relayflow bridge`` / ``run``.

    Waits for Temporal first (with backoff); setting ``stop`` meanwhile returns at once.

    Args:
        settings: Kafka, Temporal and bridge settings.
        app: The application (default: the one ``settings.app`` names).
        stop: Set it to stop gracefully.
        routes: Another routing table for ``app``'s codec (benchmarks, tests).
        tracer_provider: Trace with this provider instead of the settings' one.
        monitoring: The process's endpoints to register with (default: its own,
            on ``bridge_http_port``).
    """
    if monitoring is None:
        async with monitored(settings, "bridge_http_port") as own:
            await run_bridge(settings, app, stop=stop, routes=routes,
                             tracer_provider=tracer_provider, monitoring=own)
        return
    app = app or application(settings)
    warn_while_plaintext_accepted(settings)
    table = routes or app.route_table()
    backoff = Backoff()
    provider = traced(settings, tracer_provider)
    status: BridgeStatus | None = None
    reach: KafkaReach | None = None

    async def ready() -> str | None:
        return bridge_readiness(status, settings.ready_outage_grace_seconds, reach)

    monitoring.endpoints.checks["bridge"] = ready
    temporal = await unless_stopped(wait_for_temporal(settings, backoff=backoff, retries=False,
                                                       tracer_provider=provider,
                                                       runtime=monitoring.runtime), stop)
    if temporal is None:
        return
    status = BridgeStatus(monitoring.endpoints.metrics(BridgeMetrics))
    monitoring.endpoints.refreshes.append(status.observe)
    kafka = kafka_clients(settings)
    async with contextlib.AsyncExitStack() as stack:
        producer = await _producer_once_kafka_answers(kafka, stack, stop, backoff)
        if producer is None:
            return
        reach = await _watching_kafka("bridge", producer, monitoring, stack)
        bridge = create_app(bridge_config(settings), table,
                            event_codec(settings, app),
                            temporal=temporal, producer=producer, kafka=kafka, status=status,
                            tracer=None if provider is None else provider.get_tracer("bridge"))
        await serve(bridge, stop, description=(
            f"bridge consuming {', '.join(table.topics)} as group "
            f"{settings.kafka_consumer_group} for {app.name}"))


def worker_deployment(settings: Settings) -> WorkerDeploymentConfig | None:
    """The worker's Worker Deployment version, or None for an unversioned worker.

    A workflow type that declares no ``versioning_behavior`` is pinned: a run
    ends on the build it started on, the safe choice for code that was not
    written to be upgraded mid-run (``docs/operating/safe-deploys.md``).

    Raises:
        ValueError: A deployment is named but no build id is set.
    """
    if settings.worker_deployment_name is None:
        return None
    if settings.worker_build_id is None:
        raise ValueError(f"the worker of deployment {settings.worker_deployment_name} "
                         "needs its build id: set RELAYFLOW_WORKER_BUILD_ID")
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.worker_deployment_name,
                                        settings.worker_build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED)


def build_worker(client: Client, settings: Settings, app: Application, producer: Producer,
                 executor: ThreadPoolExecutor, metrics: WorkerMetrics | None = None) -> Worker:
    """The worker with the application's workflows and activities and the outcome publisher.

    Args:
        client: Connected Temporal client (pydantic data converter).
        settings: Task queue, and whatever the application's activities read.
        app: The application.
        producer: Started Kafka producer for outcome events.
        executor: Runs the synchronous activities.
        metrics: What the outcome publisher and the activities count into.

    Returns:
        A worker ready to ``run()``.
    """
    metrics = metrics or WorkerMetrics()
    blobs = blob_store(settings)
    publisher = OutcomePublisher(producer, event_codec(settings, app), metrics=metrics,
                                 blobs=blobs, claim_check_bytes=settings.claim_check_outcome_bytes)
    activities: list[Callable[..., Any]] = [publisher.publish_outcome, *app.activities(
        WorkerResources(settings=settings, publisher=publisher, metrics=metrics))]
    workflows = list(app.workflows)
    if app.endings:
        workflows += [SweepEndings, EndExecution]
        activities += EndingSweep(client, settings.task_queue, app.endings).all()
    if blobs is not None:
        workflows.append(SweepClaimCheck)
        activities.append(BlobSweep(client, blobs).sweep_claim_check)
    deployment = worker_deployment(settings)
    # Before the workflows' first run imports them again: only a versioned worker
    # may send their versioning behaviours (workflows/versioning.py).
    use_versioned_workers(versioned=deployment is not None)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        activities=activities,
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        workflow_runner=SandboxedWorkflowRunner(restrictions=_SANDBOX),
        deployment_config=deployment,
        # On shutdown, running activities get this long to finish before cancellation.
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def _schedule_sweeps(client: Client, settings: Settings, app: Application) -> None:
    """The sweeps' schedules; a server that refuses one does not stop the worker."""
    try:
        await ensure_ending_schedule(client, settings, app)
    except RPCError:
        # Workflows still run; only the ending sweep is missing, and the log says so.
        log.exception("ending sweep not scheduled: a workflow terminated or timed out gets "
                      "no terminal event until a worker schedules it")
    try:
        await ensure_claim_check_schedule(client, settings)
    except RPCError:
        log.exception("claim-check sweep not scheduled: blobs are kept until a worker "
                      "schedules it or `relayflow claim-check sweep` runs")


async def run_worker(settings: Settings, app: Application | None = None, *,
                     stop: asyncio.Event, tracer_provider: TracerProvider | None = None,
                     monitoring: Monitoring | None = None) -> None:
    """Run the worker for ``app`` until ``stop`` is set.

    Args:
        settings: Where Temporal and Kafka are.
        app: The application (default: the one ``settings.app`` names).
        stop: Set it to shut down gracefully: polling stops, in-flight
            activities drain, then the producer closes.
        tracer_provider: Trace with this provider instead of the settings' one.
        monitoring: The process's endpoints to register with (default: its own,
            on ``worker_http_port``).
    """
    if monitoring is None:
        async with monitored(settings, "worker_http_port") as own:
            await run_worker(settings, app, stop=stop, tracer_provider=tracer_provider,
                             monitoring=own)
        return
    app = app or application(settings)
    warn_while_plaintext_accepted(settings)
    probe = WorkerProbe(settings.ready_outage_grace_seconds)
    monitoring.endpoints.checks["worker"] = probe
    client = await connect_temporal(settings, tracer_provider=tracer_provider,
                                    runtime=monitoring.runtime)
    probe.client = client
    kafka = kafka_clients(settings)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with contextlib.AsyncExitStack() as stack:
            # Outcomes of concurrent workflows share a batch; 5 ms adds little latency.
            producer = await _producer_once_kafka_answers(kafka, stack, stop, linger_ms=5)
            if producer is None:
                return
            probe.kafka = await _watching_kafka("worker", producer, monitoring, stack)
            probe.metrics = metrics = monitoring.endpoints.metrics(WorkerMetrics)
            probe.worker = worker = build_worker(client, settings, app, producer, executor,
                                                 metrics)
            log.info("worker polling task queue %s on %s for %s%s", settings.task_queue,
                     settings.temporal_address, app.name,
                     "" if settings.worker_build_id is None else
                     f" as build {settings.worker_build_id} of worker deployment "
                     f"{settings.worker_deployment_name}")
            await _schedule_sweeps(client, settings, app)
            async with worker:
                await stop.wait()
            log.info("worker stopped")


@contextlib.asynccontextmanager
async def running(settings: Settings, app: Application | None = None, *,
                  bridge: bool = True, worker: bool = True,
                  routes: RouteTable | None = None, worker_settings: Settings | None = None,
                  tracer_provider: TracerProvider | None = None,
                  monitoring: Monitoring | None = None,
                  ) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Bridge and worker of ``app`` running in this process while the block runs.

    Leaving the block stops both gracefully and waits for them. A service that
    failed re-raises its error there (unless the block itself raised).

    Args:
        settings: Everything both need (the bridge's only, with ``worker_settings``).
        app: The application (default: the one ``settings.app`` names).
        bridge: Run the bridge.
        worker: Run the worker.
        routes: Another routing table for the bridge.
        worker_settings: The worker's own settings, e.g. its own Kafka principal
            (default: ``settings``).
        tracer_provider: Trace both with this provider instead of the settings' one.
        monitoring: The endpoints both register with (default: one server of
            their own, on ``bridge_http_port``, or ``worker_http_port`` for a
            worker alone).

    Yields:
        The services' tasks (named ``bridge`` and ``worker``), e.g. to notice one dying.
    """
    if monitoring is None:
        port = "bridge_http_port" if bridge else "worker_http_port"
        async with monitored(settings, port) as own, running(
                settings, app, bridge=bridge, worker=worker, routes=routes,
                worker_settings=worker_settings, tracer_provider=tracer_provider,
                monitoring=own) as tasks:
            yield tasks
        return
    app = app or application(settings)
    stop = asyncio.Event()
    starts: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
    if worker:
        starts.append(("worker", lambda: run_worker(worker_settings or settings, app, stop=stop,
                                                    tracer_provider=tracer_provider,
                                                    monitoring=monitoring)))
    if bridge:
        starts.append(("bridge", lambda: run_bridge(settings, app, stop=stop, routes=routes,
                                                    tracer_provider=tracer_provider,
                                                    monitoring=monitoring)))
    tasks = [asyncio.create_task(start(), name=name) for name, start in starts]
    failed = False
    try:
        yield tasks
    except BaseException:
        failed = True
        raise
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors and not failed:
            raise errors[0]
