"""The reference application's demo (its ``Demo`` extension, run by ``relayflow demo``).

Once ``relayflow demo`` has brought the local stack up and runs bridge and
worker in its process, this produces a mix of orders (successes, a failure at
each saga step, a cancellation, a duplicate delivery, an undecodable record,
approvals) and a batch, and shows each outcome as it arrives on Kafka, the
batch as a live progress bar. Succeeds only when every expected outcome
arrived and nothing unexpected did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from relayflow.config.settings import Settings
from relayflow.operate.signing import decision_key
from relayflow.reference.decision_signatures import sign_decision
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalTimedOut,
    BatchCompleted,
    BatchProgress,
    BatchRequested,
    OrderCancelled,
    OrderFailed,
    OrderLine,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import (
    APPROVALS_DECISIONS,
    BATCHES_OUTCOMES,
    BATCHES_REQUESTS,
    ORDERS_EVENTS,
    ORDERS_OUTCOMES,
)
from relayflow.runtime.bootstrap import event_codec
from relayflow.runtime.clients import kafka_clients
from schemas import Event
from schemas.codec import DecodeError
from schemas.dead_letters import DlqReason
from schemas.formats import EventCodec
from schemas.framing import to_record
from schemas.headers import DLQ_REASON, EVENT_TYPE
from schemas.signatures import SigningKey
from schemas.topics import DLQ_SUFFIX

__all__ = ["BatchWatch", "ReferenceDemo", "Scenario", "build_scenarios", "run_demo"]

log = logging.getLogger(__name__)

ORDERS_DLQ = ORDERS_EVENTS + DLQ_SUFFIX


@dataclass
class Scenario:
    """One order the demo sends and the outcome it must produce.

    Attributes:
        label: What the scenario shows.
        order_id: Business key (unique per demo run).
        expected: ``OrderCompleted``, ``OrderFailed:<reason>`` or ``DLQ:<reason>``.
        records: (key, value, headers) records to produce, in order.
        observed: What arrived (filled in while the demo runs).
        detail: Reason, compensations or DLQ reason, for the table.
        count: How many terminal outcomes arrived (duplicates show here).
        approve: Approve this order when its ``ApprovalRequested`` arrives.
        trail: Approval events seen so far, for the table.
    """

    label: str
    order_id: str
    expected: str
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    observed: str = ""
    detail: str = ""
    count: int = 0
    approve: bool = False
    trail: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """The expected outcome arrived exactly once."""
        return self.observed == self.expected and self.count == 1


class BatchWatch:
    """The demo's batch: a generated one with known failures, shown as a progress bar.

    Args:
        batch_id: Business key (unique per demo run).
        total: Items in the batch.
        fail_every: Every n-th item is invalid, so the expected failures are known.
    """

    def __init__(self, batch_id: str, *, total: int = 600, fail_every: int = 50) -> None:
        self.request = BatchRequested(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), batch_id=batch_id,
            item_count=total, seed=7, fail_every=fail_every, chunk_size=25,
            max_concurrent_children=4, progress_every_chunks=2,
        )
        self.expected_failed = len(range(0, total, fail_every))
        self.completed: BatchCompleted | None = None
        self.progress = Progress(TextColumn("batch {task.fields[batch]}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn())
        self._task = self.progress.add_task("batch", total=total, batch=batch_id,
                                            status="waiting for BatchProgress…")

    @property
    def done(self) -> bool:
        """BatchCompleted arrived with exactly the expected counts."""
        c, total = self.completed, self.request.total
        return (c is not None and c.failed == self.expected_failed
                and c.succeeded == total - self.expected_failed)

    def observe(self, event: Event) -> None:
        """Advance the bar from a ``BatchProgress`` or ``BatchCompleted`` of this batch."""
        if not isinstance(event, BatchProgress) or event.batch_id != self.request.batch_id:
            return
        status = (f"{event.succeeded} ok · {event.failed} failed · "
                  f"chunk {event.chunks_done}/{event.chunks_total}")
        if isinstance(event, BatchCompleted):
            self.completed = event
            verdict = "as expected" if self.done else f"expected {self.expected_failed} failed"
            status = f"BatchCompleted: {status} ({verdict}; list: {event.failed_items_ref})"
        self.progress.update(self._task, completed=event.succeeded + event.failed, status=status)


def _order(order_id: str, *, sku: str = "SKU-TEA", qty: int = 2, price: int = 1_250,
           country: str = "DE", approval_timeout: int | None = None) -> OrderPlaced:
    return OrderPlaced(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        order_id=order_id,
        customer_id="customer-42",
        items=(OrderLine(sku=sku, quantity=qty, unit_price_cents=price),),
        amount_cents=qty * price,
        shipping_country=country,
        approval_timeout_seconds=approval_timeout,
    )


def build_scenarios(codec: EventCodec, settings: Settings, run_id: str) -> list[Scenario]:
    """The demo's orders, with ids unique to this run so reruns never collide.

    Args:
        codec: Encodes the events.
        settings: Supplies the card limit that makes one order fail at payment.
        run_id: Short random prefix of every order id.

    Returns:
        Scenarios in the order their records are produced.
    """

    def oid(name: str) -> str:
        return f"{run_id}-{name}"

    def rec(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        record = to_record(event, codec)
        return record.key, record.value, record.headers

    reference = ReferenceSettings.of(settings)
    over_limit = reference.card_limit_cents + 1
    big = reference.thresholds_cents["EUR"]  # the demo's orders are in EUR
    duplicate = rec(_order(oid("dup")))
    cancelled = _order(oid("cancel"))
    return [
        Scenario("happy path", oid("ok1"), "OrderCompleted", [rec(_order(oid("ok1")))]),
        Scenario("happy path", oid("ok2"), "OrderCompleted",
                 [rec(_order(oid("ok2"), sku="SKU-MUG", qty=1, price=899))]),
        Scenario("no stock: fails at reserve_inventory", oid("oos"), "OrderFailed:out_of_stock",
                 [rec(_order(oid("oos"), sku="OOS-UNICORN"))]),
        Scenario("over card limit: fails at charge_payment", oid("card"),
                 "OrderFailed:payment_declined",
                 [rec(_order(oid("card"), qty=1, price=over_limit))],
                 approve=over_limit >= big),
        Scenario("big order: the demo approves it", oid("big"), "OrderCompleted",
                 [rec(_order(oid("big"), qty=1, price=big))], approve=True),
        Scenario("big order: nobody decides (2 s per stage)", oid("idle"),
                 "OrderFailed:approval_timed_out",
                 [rec(_order(oid("idle"), qty=1, price=big, approval_timeout=2))]),
        Scenario("no carrier: fails at create_shipment", oid("ship"),
                 "OrderFailed:shipment_failed", [rec(_order(oid("ship"), country="XX"))]),
        Scenario("placed then cancelled", oid("cancel"), "OrderFailed:cancelled", [
            rec(cancelled),
            rec(OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                               order_id=cancelled.order_id, reason="customer changed mind")),
        ]),
        Scenario("same event delivered twice", oid("dup"), "OrderCompleted",
                 [duplicate, duplicate]),
        Scenario("undecodable bytes", oid("junk"), f"DLQ:{DlqReason.UNKNOWN_FRAMING}", [
            (oid("junk").encode(), b"this is not avro",
             [(EVENT_TYPE, OrderPlaced.avro_name.encode())]),
        ]),
    ]


def _render(scenarios: list[Scenario], batch: BatchWatch, settings: Settings,
            elapsed: float) -> Group:
    table = Table(title=f"relayflow demo: outcomes on {ORDERS_OUTCOMES} and {ORDERS_DLQ}")
    for column in ("order", "scenario", "expected", "observed", "detail"):
        table.add_column(column)
    for s in scenarios:
        style = "green" if s.done else ("red" if s.observed else "yellow")
        observed = s.observed or "waiting…"
        if s.count > 1:
            observed += f" (x{s.count}!)"
        table.add_row(s.order_id, s.label, s.expected, Text(observed, style=style), s.detail)
    footer = Text(
        f"{sum(s.done for s in scenarios)}/{len(scenarios)} orders and "
        f"{int(batch.done)}/1 batch done after {elapsed:.1f}s · "
        f"Temporal UI: {settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
        "/workflows",
    )
    return Group(table, batch.progress, footer)


def _observe(scenarios: dict[str, Scenario], codec: EventCodec, topic: str,
             record: ConsumerRecord[bytes, bytes]) -> Event | None:
    """Update the scenario a record belongs to; returns approval requests to answer."""
    order_id = (record.key or b"").decode(errors="replace")
    scenario = scenarios.get(order_id)
    if scenario is None:
        return None  # another run's record on a shared topic
    headers, value = list(record.headers), record.value
    if topic == ORDERS_DLQ:
        scenario.count += 1
        reason = dict(headers).get(DLQ_REASON, b"?").decode()
        scenario.observed = f"DLQ:{reason}"
        scenario.detail = "original bytes kept, reason in headers"
        return None
    try:
        event = codec.decode(value or b"")
    except DecodeError as exc:
        scenario.count += 1
        scenario.observed, scenario.detail = "undecodable outcome", str(exc)
        return None
    if isinstance(event, ApprovalRequested | ApprovalEscalated | ApprovalTimedOut):
        step = {ApprovalRequested: "requested", ApprovalEscalated: "escalated",
                ApprovalTimedOut: "timed out"}[type(event)]
        scenario.trail.append(step)
        scenario.detail = "approval: " + " → ".join(scenario.trail)
        return event if isinstance(event, ApprovalRequested) and scenario.approve else None
    scenario.count += 1
    trail = f" (approval {' → '.join(scenario.trail)})" if scenario.trail else ""
    if isinstance(event, OrderFailed):
        scenario.observed = f"OrderFailed:{event.reason}"
        undone = ", ".join(event.compensations) or "nothing to undo"
        scenario.detail = f"failed at {event.failed_step or '-'}; compensated: {undone}{trail}"
    else:
        scenario.observed = type(event).__name__
        scenario.detail = f"reserved, charged, shipped{trail}"
    return None


def _decision(request: ApprovalRequested, key: SigningKey | None) -> ApprovalDecided:
    decided = ApprovalDecided(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), approval_id=request.approval_id,
        order_id=request.order_id, decision="APPROVED",
        decided_by=f"{request.approver}/relayflow-demo",  # only an approver asked decides
        comment="approved by the demo",
    )
    # Signed with the dev stack's operator key (relayflow demo makes and registers it).
    return decided if key is None else sign_decision(decided, key)


async def _tail_from_end(settings: Settings, producer: AIOKafkaProducer,
                         topics: list[str]) -> AIOKafkaConsumer:
    """A consumer positioned at the current end of every partition of ``topics``."""
    consumer = kafka_clients(settings).consumer(enable_auto_commit=False)
    await consumer.start()
    consumer.assign([
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(await producer.partitions_for(topic))
    ])
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)  # resolve "end" now, before anything is produced
    return consumer


@dataclass
class _Watch:
    """What the demo reads back: outcomes, dead letters and batch events; answers approvals."""

    codec: EventCodec
    producer: AIOKafkaProducer
    consumer: AIOKafkaConsumer
    scenarios: dict[str, Scenario]
    batch: BatchWatch
    key: SigningKey | None = None

    def done(self) -> bool:
        return self.batch.done and all(s.done for s in self.scenarios.values())

    async def take(self, timeout_ms: int) -> None:
        for tp, records in (await self.consumer.getmany(timeout_ms=timeout_ms)).items():
            for r in records:
                if tp.topic == BATCHES_OUTCOMES:
                    with contextlib.suppress(DecodeError):
                        self.batch.observe(self.codec.decode(r.value or b""))
                    continue
                request = _observe(self.scenarios, self.codec, tp.topic, r)
                if isinstance(request, ApprovalRequested):
                    answer = to_record(_decision(request, self.key), self.codec,
                                       correlation_id=request.correlation_id,
                                       causation_id=str(request.event_id))
                    await self.producer.send_and_wait(APPROVALS_DECISIONS, answer.value,
                                                      key=answer.key, headers=answer.headers)


async def run_demo(settings: Settings, *, wait_seconds: float = 120.0,
                   console: Console | None = None) -> bool:
    """Send the demo events to a running system and watch the outcomes.

    Args:
        settings: Where Kafka and Temporal are; the bridge and worker must be
            running against the same settings.
        wait_seconds: How long to wait for every outcome.
        console: Where to draw the live table.

    Returns:
        True when every scenario's expected outcome arrived exactly once and the
        batch completed with the expected counts.
    """
    console = console or Console()
    codec = event_codec(settings)
    run_id = secrets.token_hex(3)
    scenarios = build_scenarios(codec, settings, run_id)
    by_order = {s.order_id: s for s in scenarios}
    batch = BatchWatch(f"{run_id}-batch")
    producer = kafka_clients(settings).producer()
    await producer.start()
    consumer = await _tail_from_end(settings, producer,
                                    [ORDERS_OUTCOMES, ORDERS_DLQ, BATCHES_OUTCOMES])

    demo = _Watch(codec, producer, consumer, by_order, batch, decision_key(settings))
    started = time.monotonic()
    try:
        request = to_record(batch.request, codec)
        await producer.send_and_wait(BATCHES_REQUESTS, request.value, key=request.key,
                                     headers=request.headers)
        for scenario in scenarios:
            for key, value, headers in scenario.records:
                await producer.send_and_wait(ORDERS_EVENTS, value, key=key, headers=headers)
        with Live(_render(scenarios, batch, settings, 0.0), console=console,
                  refresh_per_second=4) as live:
            while time.monotonic() - started < wait_seconds and not demo.done():
                await demo.take(250)
                live.update(_render(scenarios, batch, settings, time.monotonic() - started))
            if demo.done():
                # Linger briefly so a duplicate outcome would still show up.
                await asyncio.sleep(2.0)
                await demo.take(500)
                live.update(_render(scenarios, batch, settings, time.monotonic() - started))
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        await consumer.stop()
    return demo.done()


class ReferenceDemo:
    """The reference application's ``Demo``: orders of every kind and a batch (``run_demo``)."""

    async def run(self, settings: Settings, *, wait_seconds: float, console: Console) -> bool:
        """Send the demo's events to the running system and watch their outcomes.

        Args:
            settings: Where Kafka and Temporal are.
            wait_seconds: How long to wait for every outcome.
            console: Where to draw the live table.

        Returns:
            True when every expected outcome arrived exactly once.
        """
        return await run_demo(settings, wait_seconds=wait_seconds, console=console)
