"""``relayflow verify``: check the end-to-end invariants on what Kafka, Temporal and the store hold.

Reads every input topic, the outcome topics, the dead-letter topics and the
store, lists the workflows, and checks:

* ``lost``: every input record is processed (its order or batch has a
  terminal outcome, or is still running) or is on the DLQ (matched by its
  source coordinates), never neither.
* ``no-outcome`` / ``two-outcomes``: every order or batch the bridge accepted
  has exactly one terminal outcome (``OrderCompleted`` / ``OrderFailed`` /
  ``BatchCompleted``). The same outcome published twice has the same event id
  and counts once (``duplicate_publishes`` reports how often that happened).
* ``two-sagas``: no order has more than one ``OrderSaga`` run.
* ``charge-not-settled``: every charge of a finished order is either
  fulfilled (``OrderCompleted`` and a shipment) or refunded; the store keeps
  one row per idempotency key, so "exactly once" is a row count.
* ``two-charges``: no order has more than one payment.
* ``shipment-without-charge``: no live shipment without a live charge.

Orders or batches whose workflow is still running are reported as open, not
as violations; ``--wait`` gives them time to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionStatus

from relayflow.config.settings import Settings
from relayflow.kafka.reads import StoredRecord, read_records
from relayflow.reference.activities.store import Store
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import (
    ApprovalDecided,
    BatchCancelled,
    BatchCompleted,
    BatchRequested,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import (
    BATCHES_OUTCOMES,
    BATCHES_REQUESTS,
    INPUT_TOPICS,
    ORDERS_EVENTS,
    ORDERS_OUTCOMES,
)
from relayflow.runtime.bootstrap import connect_temporal, event_codec
from schemas import Event
from schemas.codec import AvroCodec, DecodeError
from schemas.topics import DLQ_SUFFIX, dlq_topic

__all__ = ["VerifyReport", "Violation", "evaluate", "verify", "verify_until_settled"]

OUTPUTS = (ORDERS_OUTCOMES, BATCHES_OUTCOMES)

# Workflow types and ids come from the routes that start them, never spelled twice.
_SAGA = ROUTES.routes[(ORDERS_EVENTS, OrderPlaced.avro_name)]
_BATCH = ROUTES.routes[(BATCHES_REQUESTS, BatchRequested.avro_name)]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant.

    Attributes:
        rule: Which (``lost``, ``no-outcome``, ``two-outcomes``, ``two-sagas``,
            ``charge-not-settled``, ``two-charges``, ``shipment-without-charge``).
        subject: The record, order or batch concerned.
        detail: What was found.
    """

    rule: str
    subject: str
    detail: str


@dataclass
class VerifyReport:
    """What ``verify`` found.

    Attributes:
        inputs: Input records in scope.
        dead_lettered: Of those, on the DLQ.
        orders: Orders the bridge accepted.
        batches: Batches the bridge accepted.
        completed: Orders ended with ``OrderCompleted``.
        failed: Orders ended with ``OrderFailed``.
        open: Orders or batches still running (workflow ids).
        duplicate_publishes: Outcome records whose event id was already seen.
        violations: Every broken invariant.
    """

    inputs: int = 0
    dead_lettered: int = 0
    orders: int = 0
    batches: int = 0
    completed: int = 0
    failed: int = 0
    open: list[str] = field(default_factory=list)
    duplicate_publishes: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No invariant is broken."""
        return not self.violations

    def summary(self) -> str:
        """One paragraph for people."""
        lines = [(
            f"inputs {self.inputs} (dead-lettered {self.dead_lettered}); orders {self.orders} "
            f"(completed {self.completed}, failed {self.failed}); batches {self.batches}; "
            f"open {len(self.open)}; duplicate outcome publishes {self.duplicate_publishes}"
        )]
        counts = Counter(v.rule for v in self.violations)
        lines.append("no violations" if self.ok else "VIOLATIONS: " + ", ".join(
            f"{rule} x{n}" for rule, n in sorted(counts.items())))
        lines += [f"  {v.rule}: {v.subject}: {v.detail}" for v in self.violations[:50]]
        return "\n".join(lines)


def _key(record: StoredRecord) -> str:
    return (record.key or b"").decode(errors="replace")


def _decode(codec: AvroCodec, record: StoredRecord) -> Event | None:
    try:
        return codec.decode(record.value or b"")
    except DecodeError:
        return None


@dataclass
class _Seen:
    """What the topics say, per business key."""

    expected_orders: set[str] = field(default_factory=set)
    expected_batches: set[str] = field(default_factory=set)
    terminal: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    kinds: dict[str, str] = field(default_factory=dict)
    batch_done: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    undecided: list[StoredRecord] = field(default_factory=list)


def _read_inputs(report: VerifyReport, seen: _Seen, codec: AvroCodec,
                 inputs: list[StoredRecord], dead: set[tuple[str, int, int]]) -> None:
    for record in inputs:
        report.inputs += 1
        if (record.topic, record.partition, record.offset) in dead:
            report.dead_lettered += 1
            continue
        event = _decode(codec, record)
        if isinstance(event, OrderPlaced | OrderCancelled | ApprovalDecided):
            seen.expected_orders.add(event.order_id)
        elif isinstance(event, BatchRequested | BatchCancelled):
            seen.expected_batches.add(event.batch_id)
        else:
            seen.undecided.append(record)  # neither processed nor dead-lettered


def _read_outcomes(report: VerifyReport, seen: _Seen, codec: AvroCodec,
                   outputs: list[StoredRecord]) -> None:
    ids: set[str] = set()
    for record in outputs:
        event = _decode(codec, record)
        if not isinstance(event, OrderCompleted | OrderFailed | BatchCompleted):
            continue
        if str(event.event_id) in ids:
            report.duplicate_publishes += 1
            continue
        ids.add(str(event.event_id))
        if isinstance(event, BatchCompleted):
            seen.batch_done[event.batch_id].add(str(event.event_id))
        else:
            seen.terminal[event.order_id].add(str(event.event_id))
            seen.kinds[event.order_id] = type(event).__name__


def _saga_id(order_id: str) -> str:
    return _SAGA.id_from(order_id=order_id)


def _batch_id(batch_id: str) -> str:
    return _BATCH.id_from(batch_id=batch_id)


async def _workflows(client: Client, prefix: str) -> dict[str, list[WorkflowExecutionStatus]]:
    runs: dict[str, list[WorkflowExecutionStatus]] = defaultdict(list)
    query = f"WorkflowType = '{_SAGA.workflow}' OR WorkflowType = '{_BATCH.workflow}'"
    async for execution in client.list_workflows(query):
        # Ids are the template with the key: the template of a key prefix is an id prefix.
        if execution.id.startswith((_saga_id(prefix), _batch_id(prefix))) \
                and execution.status is not None:
            runs[execution.id].append(execution.status)
    return runs


def _check_flows(report: VerifyReport, seen: _Seen,
                 runs: Mapping[str, list[WorkflowExecutionStatus]]) -> None:
    for order_id in sorted(seen.expected_orders):
        report.orders += 1
        workflow_id = _saga_id(order_id)
        if len(runs.get(workflow_id, [])) > 1:
            report.violations.append(Violation("two-sagas", order_id,
                                               f"{len(runs[workflow_id])} runs"))
        if _one_outcome(report, order_id, seen.terminal.get(order_id, set()), runs):
            if seen.kinds[order_id] == "OrderCompleted":
                report.completed += 1
            else:
                report.failed += 1
    for batch_id in sorted(seen.expected_batches):
        report.batches += 1
        _one_outcome(report, batch_id, seen.batch_done.get(batch_id, set()), runs)


def _one_outcome(report: VerifyReport, key: str, found: set[str],
                 runs: Mapping[str, list[WorkflowExecutionStatus]]) -> bool:
    """True when ``key`` has finished with exactly one terminal outcome; reports the rest."""
    running = [w for w in (_saga_id(key), _batch_id(key))
               if WorkflowExecutionStatus.RUNNING in runs.get(w, [])]
    if running:
        # Still running (its outcome may be out while it retries publishing it): not yet.
        report.open += running
        return False
    if len(found) == 1:
        return True
    if found:
        report.violations.append(Violation("two-outcomes", key, f"{sorted(found)}"))
    else:
        report.violations.append(Violation("no-outcome", key, "no terminal outcome, not running"))
    return False


def _by_order(rows: Iterable[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    grouped: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        grouped[str(row["order_id"])].append(row)
    return grouped


def _check_store(report: VerifyReport, seen: _Seen, store: Store) -> None:
    payments, shipments = _by_order(store.rows("payments")), _by_order(store.rows("shipments"))
    for order_id in sorted(seen.expected_orders):
        paid, shipped = payments.get(order_id, []), shipments.get(order_id, [])
        charged = [p for p in paid if p["status"] == "charged"]
        live = [s for s in shipped if s["status"] == "created"]
        if len(paid) > 1:
            report.violations.append(Violation("two-charges", order_id, f"{len(paid)} payments"))
        if live and not charged:
            report.violations.append(Violation("shipment-without-charge", order_id,
                                               f"{len(live)} shipment(s)"))
        kind = seen.kinds.get(order_id)
        if kind is None or len(seen.terminal.get(order_id, ())) != 1 \
                or _saga_id(order_id) in report.open:
            continue  # open or already reported
        if kind == "OrderCompleted" and not (charged and live):
            report.violations.append(Violation(
                "charge-not-settled", order_id, "completed without a live charge and shipment"))
        if kind == "OrderFailed" and (charged or live):
            report.violations.append(Violation(
                "charge-not-settled", order_id,
                f"failed but {len(charged)} charge(s) and {len(live)} shipment(s) remain"))


async def verify(settings: Settings, *, key_prefix: str = "",
                 client: Client | None = None) -> VerifyReport:
    """Check every invariant once.

    Args:
        settings: Where Kafka, Temporal and the store are.
        key_prefix: Only records whose key starts with this (one test's, one run's).
        client: A Temporal client to reuse.

    Returns:
        The report; ``report.ok`` is False on any violation.
    """
    wanted: Callable[[StoredRecord], bool] = lambda r: _key(r).startswith(key_prefix)  # noqa: E731
    records = [r for r in await read_records(
        settings, [*INPUT_TOPICS, *OUTPUTS, *(dlq_topic(t) for t in INPUT_TOPICS)]) if wanted(r)]
    runs = await _workflows(client or await connect_temporal(settings), key_prefix)
    reference = ReferenceSettings.of(settings)
    return evaluate(records, runs,
                    Store(reference.store_path, card_limit_cents=reference.card_limit_cents),
                    codec=event_codec(settings))


def evaluate(records: Iterable[StoredRecord], runs: Mapping[str, list[WorkflowExecutionStatus]],
             store: Store, *, codec: AvroCodec | None = None) -> VerifyReport:
    """Apply every rule to what was read (pure: no I/O beyond reading ``store``).

    Args:
        records: Records of the input, outcome and dead-letter topics.
        runs: Workflow id -> status of each of its runs.
        store: The reference store.
        codec: Decodes the records (default: single-object framing only; pass
            ``Settings.codec()`` when a schema registry frames them).

    Returns:
        The report.
    """
    codec = codec or APP.codec()
    records = list(records)
    dead = {r.source for r in records if r.topic.endswith(DLQ_SUFFIX)}
    report, seen = VerifyReport(), _Seen()
    _read_inputs(report, seen, codec, [r for r in records if r.topic in INPUT_TOPICS], dead)
    _read_outcomes(report, seen, codec, [r for r in records if r.topic in OUTPUTS])
    report.violations += [
        Violation("lost", r.coordinates, "neither processed nor on the DLQ")
        for r in seen.undecided
    ]
    _check_flows(report, seen, runs)
    _check_store(report, seen, store)
    return report


async def verify_until_settled(settings: Settings, *, key_prefix: str = "",
                               wait_seconds: float = 0.0) -> VerifyReport:
    """``verify``, again every second while flows are open or outcomes missing, up to a bound.

    Args:
        settings: Where everything is.
        key_prefix: Only records whose key starts with this.
        wait_seconds: How long to give open flows to finish.
    """
    client = await connect_temporal(settings)
    deadline = time.monotonic() + wait_seconds
    while True:
        report = await verify(settings, key_prefix=key_prefix, client=client)
        settled = not report.open and not any(v.rule == "no-outcome" for v in report.violations)
        if settled or time.monotonic() >= deadline:
            return report
        await asyncio.sleep(1.0)
