"""``relayflow verify``: an application's end-to-end invariants, on what Kafka and Temporal hold.

Reads the configured application's input topics, its outcome topics and the
dead-letter topics of its inputs, lists the workflows its routes address, and
checks, for any application:

* ``lost``: every input record is either on the DLQ (matched by its source
  coordinates) or decodes to an event one of the application's routes takes;
  never neither.
* ``no-outcome`` / ``two-outcomes``: every workflow the accepted inputs address
  (its id from the route, as the bridge computes it) has exactly one terminal
  outcome once it no longer runs. Outcomes belong to the workflows addressed
  by events with the same business key (``Event.key``). The same outcome
  published twice has the same event id and counts once
  (``duplicate_publishes`` reports how often that happened).
* ``two-runs``: no workflow id has more than one run (runs that continued as
  new count as part of the next one).

Terminal outcomes are, by default, every event type of the application's
outcome topics. An application whose outcome topics also carry events along
the way (progress, approval requests) names its terminal ones in a
``VerifyChecks`` extension, which may also add invariants of its own (the
reference application's: every charge refunded or fulfilled, one payment per
order, no shipment without a charge).

Workflows still running are reported as open, not as violations; ``--wait``
gives them time to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from temporalio.client import Client, WorkflowExecutionStatus

from relayflow.application import Application, load_application
from relayflow.config.settings import Settings
from relayflow.kafka.reads import StoredRecord, read_records, resolved_if_found
from relayflow.operate.records import key_text
from relayflow.runtime.bootstrap import connect_temporal, event_codec
from relayflow.runtime.clients import blob_store, kafka_clients
from schemas import Event
from schemas.codec import DecodeError
from schemas.formats import EventCodec
from schemas.headers import EVENT_TYPE
from schemas.topics import DLQ_SUFFIX, dlq_topic

__all__ = [
    "Flow",
    "VerifyChecks",
    "VerifyReport",
    "Violation",
    "evaluate",
    "verify",
    "verify_until_settled",
]

_RUNNING = WorkflowExecutionStatus.RUNNING
_CONTINUED = WorkflowExecutionStatus.CONTINUED_AS_NEW


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant.

    Attributes:
        rule: Which (``lost``, ``no-outcome``, ``two-outcomes``, ``two-runs``, or
            one of the application's own ``VerifyChecks``).
        subject: The record, workflow or business key concerned.
        detail: What was found.
    """

    rule: str
    subject: str
    detail: str

    def as_json(self) -> dict[str, str]:
        """The violation as a JSON object."""
        return {"rule": self.rule, "subject": self.subject, "detail": self.detail}


@dataclass
class Flow:
    """One workflow the accepted inputs address, and what came out of it.

    Attributes:
        workflow_id: Its id (the route's template with the event's fields).
        workflow_type: Its type.
        keys: Business keys of the events addressing it.
        runs: Status of each of its runs (runs continued as new left out).
        outcomes: Its terminal outcomes, one per event id.
    """

    workflow_id: str
    workflow_type: str
    keys: set[str] = field(default_factory=set)
    runs: list[WorkflowExecutionStatus] = field(default_factory=list)
    outcomes: list[Event] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """A run of it is still running (its outcome may be out while it retries publishing)."""
        return _RUNNING in self.runs

    @property
    def settled(self) -> Event | None:
        """Its one terminal outcome, once it no longer runs (None: open, none or several)."""
        return self.outcomes[0] if len(self.outcomes) == 1 and not self.running else None


@runtime_checkable
class VerifyChecks(Protocol):
    """An application's own part of ``relayflow verify`` (one of ``Application.extensions``)."""

    @property
    def terminal_outcomes(self) -> Collection[str]:
        """Avro full names of the outcome events that end a workflow."""
        ...

    def check(self, settings: Settings, flows: Sequence[Flow]) -> list[Violation]:
        """The application's own invariants on these flows (it may read its own stores).

        Args:
            settings: Where the application's resources are.
            flows: Every workflow the inputs in scope address, with its outcomes.
        """
        ...


@dataclass
class VerifyReport:
    """What ``verify`` found.

    Attributes:
        inputs: Input records in scope.
        dead_lettered: Of those, on the DLQ.
        workflows: Workflows the accepted inputs address, counted by type.
        settled: Workflows that ended with exactly one terminal outcome,
            counted by that outcome's type (class name).
        open: Workflows still running (ids).
        duplicate_publishes: Terminal outcome records whose event id was already seen.
        violations: Every broken invariant.
    """

    inputs: int = 0
    dead_lettered: int = 0
    workflows: Counter[str] = field(default_factory=Counter)
    settled: Counter[str] = field(default_factory=Counter)
    open: list[str] = field(default_factory=list)
    duplicate_publishes: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No invariant is broken."""
        return not self.violations

    def summary(self) -> str:
        """One paragraph for people."""

        def counted(counts: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"

        lines = [(
            f"inputs {self.inputs} (dead-lettered {self.dead_lettered}); workflows "
            f"{counted(self.workflows)}; settled {counted(self.settled)}; open {len(self.open)}; "
            f"duplicate outcome publishes {self.duplicate_publishes}"
        )]
        counts = Counter(v.rule for v in self.violations)
        lines.append("no violations" if self.ok else "VIOLATIONS: " + ", ".join(
            f"{rule} x{n}" for rule, n in sorted(counts.items())))
        lines += [f"  {v.rule}: {v.subject}: {v.detail}" for v in self.violations[:50]]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON object (``ok`` false on any violation)."""
        return {"ok": self.ok, "inputs": self.inputs, "dead_lettered": self.dead_lettered,
                "workflows": dict(sorted(self.workflows.items())),
                "settled": dict(sorted(self.settled.items())), "open": self.open,
                "duplicate_publishes": self.duplicate_publishes,
                "violations": [v.as_json() for v in self.violations]}


def _decode(codec: EventCodec, record: StoredRecord) -> Event | None:
    try:
        return codec.decode(record.value or b"", record.header(EVENT_TYPE) or None)
    except DecodeError:
        return None


def _outcome_topics(app: Application) -> tuple[str, ...]:
    return tuple(t.name for t in app.topics if not t.inbound)


def _terminal_outcomes(app: Application, checks: VerifyChecks | None) -> frozenset[str]:
    if checks is not None:
        return frozenset(checks.terminal_outcomes)
    return frozenset(name for t in app.topics if not t.inbound for name in t.events)


def _flows(app: Application, codec: EventCodec, records: Iterable[StoredRecord],
           report: VerifyReport) -> tuple[dict[str, Flow], list[StoredRecord]]:
    """The workflows the input records address, and the records neither routed nor dead-lettered."""
    records = list(records)
    inputs = set(app.input_topics)
    dead = {r.source for r in records if r.topic.endswith(DLQ_SUFFIX)}
    table = app.route_table()
    flows: dict[str, Flow] = {}
    lost: list[StoredRecord] = []
    for record in records:
        if record.topic not in inputs:
            continue
        report.inputs += 1
        if (record.topic, record.partition, record.offset) in dead:
            report.dead_lettered += 1
            continue
        event = _decode(codec, record)
        route = None if event is None else table.lookup(record.topic, event.avro_name)
        if event is None or route is None:
            lost.append(record)
            continue
        workflow_id = route.id_for(event)
        flows.setdefault(workflow_id, Flow(workflow_id, route.workflow)).keys.add(event.key)
    return flows, lost


def _take_outcomes(report: VerifyReport, flows: Mapping[str, Flow], codec: EventCodec,
                   terminal: frozenset[str], outputs: Iterable[StoredRecord]) -> None:
    by_key: dict[str, list[Flow]] = defaultdict(list)
    for flow in flows.values():
        for key in flow.keys:
            by_key[key].append(flow)
    seen: set[str] = set()
    for record in outputs:
        event = _decode(codec, record)
        if event is None or event.avro_name not in terminal:
            continue
        if str(event.event_id) in seen:
            report.duplicate_publishes += 1
            continue
        seen.add(str(event.event_id))
        for flow in by_key.get(event.key, ()):
            flow.outcomes.append(event)


def _check_flows(report: VerifyReport, flows: Iterable[Flow]) -> None:
    for flow in sorted(flows, key=lambda f: f.workflow_id):
        report.workflows[flow.workflow_type] += 1
        if len(flow.runs) > 1:
            report.violations.append(Violation("two-runs", flow.workflow_id,
                                               f"{len(flow.runs)} runs"))
        if flow.running:
            report.open.append(flow.workflow_id)
        elif flow.settled is not None:
            report.settled[type(flow.settled).__name__] += 1
        elif flow.outcomes:
            report.violations.append(Violation(
                "two-outcomes", flow.workflow_id,
                ", ".join(f"{type(o).__name__} {o.event_id}" for o in flow.outcomes)))
        else:
            report.violations.append(Violation("no-outcome", flow.workflow_id,
                                               "no terminal outcome, not running"))


def evaluate(app: Application, records: Iterable[StoredRecord],
             runs: Mapping[str, list[WorkflowExecutionStatus]], settings: Settings, *,
             codec: EventCodec | None = None, checks: VerifyChecks | None = None,
             ) -> VerifyReport:
    """Apply every rule to what was read (pure but for what ``checks`` reads).

    Args:
        app: The application (its topics, routes and codec).
        records: Records of its input, outcome and dead-letter topics.
        runs: Workflow id -> status of each of its runs.
        settings: Handed to ``checks``.
        codec: Decodes the records (default: ``app``'s, single-object framing
            only; pass ``event_codec(settings, app)`` when a schema registry frames them).
        checks: The application's own part (default: its ``VerifyChecks`` extension, if any).

    Returns:
        The report.
    """
    codec = codec or app.codec()
    checks = checks or app.extension(VerifyChecks)
    records = list(records)
    report = VerifyReport()
    flows, lost = _flows(app, codec, records, report)
    report.violations += [Violation("lost", r.coordinates, "neither processed nor on the DLQ")
                          for r in lost]
    for workflow_id, flow in flows.items():
        flow.runs = [status for status in runs.get(workflow_id, ()) if status != _CONTINUED]
    outputs = set(_outcome_topics(app))
    _take_outcomes(report, flows, codec, _terminal_outcomes(app, checks),
                   [r for r in records if r.topic in outputs])
    _check_flows(report, flows.values())
    if checks is not None:
        report.violations += checks.check(settings, sorted(flows.values(),
                                                           key=lambda f: f.workflow_id))
    return report


async def _runs(client: Client, app: Application,
                wanted: Collection[str]) -> dict[str, list[WorkflowExecutionStatus]]:
    """Every run of the workflows ``wanted`` (ids), listed by the types the routes address."""
    runs: dict[str, list[WorkflowExecutionStatus]] = defaultdict(list)
    types = sorted({route.workflow for route in app.routes})
    if not wanted or not types:
        return runs
    query = " OR ".join(f"WorkflowType = '{name}'" for name in types)
    async for execution in client.list_workflows(query):
        if execution.id in wanted and execution.status is not None:
            runs[execution.id].append(execution.status)
    return runs


async def verify(settings: Settings, *, app: Application | None = None, key_prefix: str = "",
                 client: Client | None = None) -> VerifyReport:
    """Check every invariant once.

    Args:
        settings: Where Kafka and Temporal are.
        app: The application (default: the configured one, ``settings.app``).
        key_prefix: Only records whose key starts with this (one test's, one run's).
        client: A Temporal client to reuse.

    Returns:
        The report; ``report.ok`` is False on any violation.
    """
    app = app or load_application(settings.app)
    codec = event_codec(settings, app)
    topics = [*app.input_topics, *_outcome_topics(app),
              *(dlq_topic(t) for t in app.input_topics)]
    blobs = blob_store(settings)
    # An outcome that went by claim check counts with the value it names.
    records = [resolved_if_found(r, blobs)
               for r in await read_records(kafka_clients(settings), topics)
               if key_text(r.key).startswith(key_prefix)]
    addressed = _flows(app, codec, records, VerifyReport())[0]
    runs = await _runs(client or await connect_temporal(settings), app, set(addressed))
    return evaluate(app, records, runs, settings, codec=codec)


async def verify_until_settled(settings: Settings, *, app: Application | None = None,
                               key_prefix: str = "", wait_seconds: float = 0.0) -> VerifyReport:
    """``verify``, again every second while flows are open or outcomes missing, up to a bound.

    Args:
        settings: Where everything is.
        app: The application (default: the configured one).
        key_prefix: Only records whose key starts with this.
        wait_seconds: How long to give open flows to finish.
    """
    app = app or load_application(settings.app)
    client = await connect_temporal(settings)
    deadline = time.monotonic() + wait_seconds
    while True:
        report = await verify(settings, app=app, key_prefix=key_prefix, client=client)
        settled = not report.open and not any(v.rule == "no-outcome" for v in report.violations)
        if settled or time.monotonic() >= deadline:
            return report
        await asyncio.sleep(1.0)
