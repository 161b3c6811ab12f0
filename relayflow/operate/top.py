"""``relayflow top``: rates, lag, calls in flight, dead letters, parked keys, approvals, workflows.

One ``Frame`` is read from three places:

* the bridge's and the worker's ``/metrics`` (Prometheus text, parsed with
  ``prometheus_client``'s parser; the names of the observability contract):
  counters (records consumed, commands by kind, dead letters, outcomes
  published, batch items) shown as totals and as rates (their change since
  the previous frame per second), and gauges (consumer lag per topic,
  Temporal calls in flight, paused partitions, dependencies up);
* Kafka: the records on each dead-letter topic (log end minus log start)
  and the parked keys per topic (``relayflow.operate.dlq``);
* Temporal: the pending approvals (the application's ``Approvals`` extension,
  if it has one) and the running workflows of each of the application's
  workflow types (visibility counts), both on ``RELAYFLOW_TASK_QUEUE``.

Whatever does not answer within the bound is named in ``Frame.unanswered``;
the rest of the frame is still shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from relayflow.application import load_application
from relayflow.config.settings import Settings
from relayflow.kafka.reads import record_counts
from relayflow.operate.approvals import approvals_in
from relayflow.operate.deadlines import (
    Unanswered,
    connected_temporal,
    kafka_answers,
    listing_and_queries,
    temporal_answers,
)
from relayflow.operate.dlq import parked_keys
from relayflow.runtime.clients import kafka_clients
from schemas.topics import dlq_topic

__all__ = ["COUNTERS", "Dashboard", "Frame", "Sample", "default_endpoints", "frames",
           "one_frame", "parse_metrics", "render", "scrape"]

Sample = tuple[str, Mapping[str, str], float]
"""One sample: its name (``_total`` for counters), its labels, its value."""

COUNTERS: dict[str, tuple[str, Mapping[str, str]]] = {
    "consumed": ("relayflow_bridge_records_consumed_total", {}),
    "started": ("relayflow_bridge_commands_total", {"command": "start"}),
    "signalled": ("relayflow_bridge_commands_total", {"command": "signal"}),
    "cancelled": ("relayflow_bridge_commands_total", {"command": "cancel"}),
    "dead_lettered": ("relayflow_bridge_dead_letters_total", {}),
    "outcomes_published": ("relayflow_outcomes_published_total", {}),
    "batch_items_done": ("relayflow_batch_items_total", {"result": "done"}),
    "batch_items_failed": ("relayflow_batch_items_total", {"result": "failed"}),
    "dependency_retries": ("relayflow_dependency_retries_total", {}),
    "dependency_outages": ("relayflow_dependency_outages_total", {}),
}
"""What the dashboard counts: sample name and the labels a sample must have, summed."""

_LAG = "relayflow_bridge_consumer_lag"
_IN_FLIGHT = "relayflow_bridge_temporal_calls_in_flight"
_PAUSED = "relayflow_bridge_partitions_paused"
_UP = "relayflow_dependency_up"
_WORKER_FAMILY = "relayflow_outcomes_published"
"""Served by whatever runs the worker (the bridge's endpoint too under ``relayflow run``)."""


def default_endpoints(settings: Settings) -> list[str]:
    """The bridge's and the worker's ``/metrics`` on this host (the contract's ports)."""
    return [f"http://127.0.0.1:{settings.bridge_http_port}/metrics",
            f"http://127.0.0.1:{settings.worker_http_port}/metrics"]


def parse_metrics(text: str) -> tuple[list[Sample], set[str]]:
    """The samples of a Prometheus text exposition, and the names of its metric families.

    Raises:
        ValueError: Not the Prometheus text format.
    """
    samples: list[Sample] = []
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        samples += [(s.name, s.labels, s.value) for s in family.samples]
    return samples, families


def _fetch(url: str, seconds: float) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url} is not an http(s) URL")
    with urllib.request.urlopen(url, timeout=seconds) as response:  # noqa: S310 - http(s) only
        return str(response.read().decode())


async def scrape(url: str, seconds: float) -> tuple[list[Sample], set[str]]:
    """Read and parse one metrics endpoint; ``Unanswered`` naming it when it does not answer."""
    who = f"the metrics endpoint {url}"
    try:
        async with asyncio.timeout(seconds):
            text = await asyncio.to_thread(_fetch, url, seconds)
    except TimeoutError:
        raise Unanswered(who, f"did not answer within {seconds:g} s") from None
    except urllib.error.URLError as error:
        raise Unanswered(who, f"did not answer: {error.reason}") from None
    except OSError as error:
        raise Unanswered(who, f"did not answer: {error}") from None
    try:
        return parse_metrics(text)
    except ValueError as error:
        raise Unanswered(who, f"did not answer with Prometheus metrics: {error}") from None


def _sum(samples: Iterable[Sample], name: str, labels: Mapping[str, str]) -> float:
    return sum(value for found, have, value in samples
               if found == name and all(have.get(k) == v for k, v in labels.items()))


def _by(samples: Iterable[Sample], name: str, label: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for found, labels, value in samples:
        if found == name:
            totals[labels.get(label, "")] = totals.get(labels.get(label, ""), 0.0) + value
    return dict(sorted(totals.items()))


@dataclass
class Frame:
    """One refresh of the dashboard.

    Attributes:
        endpoints: The metrics endpoints read.
        totals: Counter totals (``COUNTERS``' names), summed over the endpoints
            (empty when no endpoint answered).
        rates: Their change per second since the previous frame (None without one).
        lag: Consumer lag (records) per input topic.
        in_flight: Temporal calls in flight in the bridge (None: no endpoint answered).
        partitions_paused: Paused partitions per topic.
        dependencies_up: 1 when every endpoint says the dependency is up, else 0.
        dead_letters: Records on each dead-letter topic (None: Kafka did not answer).
        parked_keys: Parked keys per source topic (None: Kafka did not answer).
        pending_approvals: Orders waiting for a decision (None: not known).
        running: Running workflows of each of the application's workflow types on
            its task queue (None: Temporal did not answer).
        unanswered: What did not answer, one line each.
    """

    endpoints: list[str]
    totals: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float | None] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)
    in_flight: float | None = None
    partitions_paused: dict[str, float] = field(default_factory=dict)
    dependencies_up: dict[str, float] = field(default_factory=dict)
    dead_letters: dict[str, int] | None = None
    parked_keys: dict[str, int] | None = None
    pending_approvals: int | None = None
    running: dict[str, int] | None = None
    unanswered: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The frame as a JSON object (the numbers ``render`` shows)."""
        return {
            "endpoints": self.endpoints, "totals": self.totals, "rates_per_second": self.rates,
            "lag": self.lag, "in_flight": self.in_flight,
            "partitions_paused": self.partitions_paused,
            "dependencies_up": self.dependencies_up, "dead_letters": self.dead_letters,
            "parked_keys": self.parked_keys, "pending_approvals": self.pending_approvals,
            "running_workflows": self.running, "unanswered": self.unanswered,
        }


class Dashboard:
    """Reads frames; keeps the previous counters for rates and one Temporal client.

    Args:
        settings: Where Kafka and Temporal are; ``settings.app``'s topics.
        endpoints: Metrics endpoints (``default_endpoints`` when None).
        seconds: Bound of each call.
    """

    def __init__(self, settings: Settings, endpoints: list[str] | None = None, *,
                 seconds: float) -> None:
        self._settings = settings
        self._defaults = endpoints is None
        self._endpoints = endpoints if endpoints is not None else default_endpoints(settings)
        self._seconds = seconds
        self._previous: tuple[float, dict[str, float]] | None = None
        self._client: Client | None = None
        app = load_application(settings.app)
        self._dlqs = [dlq_topic(topic) for topic in app.input_topics]
        self._approvals = approvals_in(app)
        self._workflow_types = sorted(app.workflow_signals())

    async def prime(self) -> None:
        """Read the counters once, so the next frame has rates."""
        samples, read = await self._metrics(Frame(self._endpoints))
        if read:
            self._previous = (time.monotonic(), self._totals(samples))

    async def frame(self) -> Frame:
        """Read everything once."""
        frame = Frame(self._endpoints)
        samples, metrics_read = await self._metrics(frame)
        now, totals = time.monotonic(), self._totals(samples)
        if metrics_read:
            frame.totals = totals
            frame.rates = self._rates(now, totals)
            frame.in_flight = _sum(samples, _IN_FLIGHT, {})
            self._previous = (now, totals)
        frame.lag = _by(samples, _LAG, "topic")
        frame.partitions_paused = _by(samples, _PAUSED, "topic")
        frame.dependencies_up = {
            name: min(value for found, labels, value in samples
                      if found == _UP and labels.get("dependency") == name)
            for name in sorted({labels.get("dependency", "") for found, labels, _ in samples
                                if found == _UP})}
        await asyncio.gather(self._kafka(frame), self._temporal(frame))
        return frame

    def _rates(self, now: float, totals: dict[str, float]) -> dict[str, float | None]:
        if self._previous is None:
            return dict.fromkeys(totals)
        then, before = self._previous
        elapsed = max(now - then, 1e-9)
        # A counter that went down was reset (its process restarted): count from zero.
        return {name: (value - before.get(name, 0.0) if value >= before.get(name, 0.0)
                       else value) / elapsed for name, value in totals.items()}

    @staticmethod
    def _totals(samples: list[Sample]) -> dict[str, float]:
        return {name: _sum(samples, metric, labels) for name, (metric, labels) in COUNTERS.items()}

    async def _metrics(self, frame: Frame) -> tuple[list[Sample], bool]:
        """Every endpoint's samples; the silent ones named in ``frame``. True when any answered."""
        results = await asyncio.gather(*(scrape(url, self._seconds) for url in self._endpoints),
                                       return_exceptions=True)
        samples: list[Sample] = []
        families: set[str] = set()
        silent: list[tuple[str, Unanswered]] = []
        for url, result in zip(self._endpoints, results, strict=True):
            if isinstance(result, Unanswered):
                silent.append((url, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                samples += result[0]
                families |= result[1]
        worker = default_endpoints(self._settings)[1]
        for url, error in silent:
            # `relayflow run` serves the worker's metrics on the bridge's endpoint.
            if not (self._defaults and url == worker and _WORKER_FAMILY in families):
                frame.unanswered.append(str(error))
        return samples, len(silent) < len(self._endpoints)

    async def _kafka(self, frame: Frame) -> None:
        async def counts() -> None:
            async with kafka_answers(self._settings, self._seconds):
                found = await record_counts(kafka_clients(self._settings), self._dlqs)
            frame.dead_letters = {topic: found.get(topic, 0) for topic in self._dlqs}

        async def parked() -> None:
            async with kafka_answers(self._settings, self._seconds):
                keys = await parked_keys(self._settings)
            frame.parked_keys = dict(sorted(Counter(topic for topic, _ in keys).items()))

        for outcome in await asyncio.gather(counts(), parked(), return_exceptions=True):
            if isinstance(outcome, Unanswered):
                frame.unanswered.append(str(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome

    async def _temporal(self, frame: Frame) -> None:
        try:
            if self._client is None:
                self._client = await connected_temporal(self._settings, self._seconds)
            async with temporal_answers(self._settings, self._seconds):
                frame.running = {
                    name: (await self._client.count_workflows(
                        f"WorkflowType = '{name}' AND ExecutionStatus = 'Running' "
                        f"AND TaskQueue = '{self._settings.task_queue}'")).count
                    for name in self._workflow_types}
            if self._approvals is not None:  # an application without approvals has none
                async with temporal_answers(self._settings,
                                            listing_and_queries(self._seconds)):
                    frame.pending_approvals = len(await self._approvals.pending(
                        self._client, seconds=self._seconds,
                        task_queue=self._settings.task_queue))
        except Unanswered as silent:  # PendingUnanswered too: a partial count would mislead
            frame.unanswered.append(str(silent))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def frames(dashboard: Dashboard, interval: float,
                 stop: asyncio.Event) -> AsyncIterator[Frame]:
    """A frame now, then one every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        yield await dashboard.frame()
        await _pause(stop, interval)


async def one_frame(dashboard: Dashboard, interval: float, stop: asyncio.Event) -> Frame:
    """One frame with rates: the counters read, then everything ``interval`` seconds later."""
    await dashboard.prime()
    await _pause(stop, interval)
    return await dashboard.frame()


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _held_back(frame: Frame) -> Table:
    """What waits in Kafka and Temporal: dead letters, parked keys, approvals, workflows."""
    held = Table(title="held back (Kafka, Temporal)", title_justify="left")
    held.add_column("what")
    held.add_column("count", justify="right")
    for topic, count in (frame.dead_letters or {}).items():
        held.add_row(f"dead letters {topic}", _number(count))
    for topic, count in (frame.parked_keys or {}).items():
        held.add_row(f"parked keys {topic}", _number(count))
    if frame.parked_keys == {}:
        held.add_row("parked keys", "0")
    held.add_row("pending approvals", _number(frame.pending_approvals))
    running: dict[str, int | None] = {"workflows": None} if frame.running is None \
        else dict(frame.running)
    for name, runs in running.items():
        held.add_row(f"running {name}", _number(runs))
    return held


def render(frame: Frame) -> Group:
    """The frame as rich tables (what ``relayflow top`` draws)."""
    flow = Table(title="flow (from /metrics)", title_justify="left")
    for column in ("counter", "total", "per second"):
        flow.add_column(column, justify="right" if column != "counter" else "left")
    for name, total in frame.totals.items():
        flow.add_row(name.replace("_", " "), _number(total), _number(frame.rates.get(name), 1))
    bridge = Table(title="bridge", title_justify="left")
    bridge.add_column("gauge")
    bridge.add_column("value", justify="right")
    bridge.add_row("Temporal calls in flight", _number(frame.in_flight))
    for topic, lag in frame.lag.items():
        bridge.add_row(f"lag {topic}", _number(lag))
    for topic, paused in frame.partitions_paused.items():
        bridge.add_row(f"paused partitions {topic}", _number(paused))
    for dependency, up in frame.dependencies_up.items():
        bridge.add_row(f"{dependency} up", "yes" if up else "[red]no[/red]")
    held = _held_back(frame)
    parts: list[Any] = [Text("metrics: " + ", ".join(frame.endpoints), style="dim"),
                        flow, bridge, held]
    parts += [Text(f"did not answer: {line}", style="red") for line in frame.unanswered]
    return Group(*parts)
