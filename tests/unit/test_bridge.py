"""Bridge logic without services: routes, record validation, ordering, retries, DLQ headers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bridge.commands import PermanentFailure, TransientFailure, classify_rpc_error
from bridge.consumer import Backoff, BatchProcessor
from bridge.dlq import dlq_headers
from bridge.routes import ROUTES, Action, Route, RouteTable
from relayflow.topics import ORDERS_EVENTS
from schemas import EVENT_TYPES, Event, Inbound, OrderCancelled, OrderPlaced
from schemas.codec import AvroCodec
from schemas.headers import DLQ_REASON, DLQ_SOURCE_OFFSET
from schemas.records import to_record
from tests.support import order_placed

CODEC = AvroCodec(EVENT_TYPES.values())


@dataclass
class Record:
    """Shaped like aiokafka's ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FakeCommands:
    """Our CommandSink: records calls; can fail transiently N times or permanently."""

    transient_failures: int = 0
    permanent: PermanentFailure | None = None
    delay_for: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def execute(self, route: Route, inbound: Inbound[Event]) -> str:
        if self.transient_failures:
            self.transient_failures -= 1
            raise TransientFailure("temporal unavailable")
        if self.permanent is not None:
            raise self.permanent
        await asyncio.sleep(self.delay_for.get(inbound.event.key, 0))
        self.calls.append((route.id_for(inbound.event), type(inbound.event).__name__))
        return "started"


@dataclass
class FakeDeadLetters:
    sent: list[tuple[int, str]] = field(default_factory=list)

    async def send(self, record: Record, reason: str, error: str) -> None:
        assert error  # a dead letter always says why
        self.sent.append((record.offset, reason))


def processor(commands: FakeCommands, dlq: FakeDeadLetters, **kwargs: int) -> BatchProcessor:
    return BatchProcessor(ROUTES, CODEC, commands, dlq, max_payload_bytes=kwargs.get("limit", 4096),
                          backoff=Backoff(initial=0.001, maximum=0.002))


def record(event: Event, offset: int = 0, *, partition: int = 0, key: bytes | None = None,
           headers: list[tuple[str, bytes]] | None = None) -> Record:
    rec = to_record(event, CODEC)
    return Record(ORDERS_EVENTS, partition, offset, rec.key if key is None else key, rec.value,
                  rec.headers if headers is None else headers)


def test_route_table_routes_orders() -> None:
    placed = ROUTES.lookup(ORDERS_EVENTS, OrderPlaced.avro_name)
    cancelled = ROUTES.lookup(ORDERS_EVENTS, OrderCancelled.avro_name)
    assert placed is not None
    assert placed.action is Action.START
    assert cancelled is not None
    assert cancelled.action is Action.CANCEL
    assert placed.id_for(order_placed("A-9")) == "order-A-9"
    assert ROUTES.lookup("other.topic", OrderPlaced.avro_name) is None


@pytest.mark.parametrize(
    "routes",
    [
        [Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "order-{nope}")],
        [Route(ORDERS_EVENTS, OrderPlaced, Action.SIGNAL, "W", "order-{order_id}")],
        [Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "o-{order_id}", signal="s")],
        [Route(ORDERS_EVENTS, OrderPlaced, Action.START, "W", "o-{order_id}")] * 2,
    ],
    ids=["unknown-field", "signal-without-name", "name-without-signal", "duplicate"],
)
def test_route_table_rejects_bad_routes(routes: list[Route]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        RouteTable(routes)


async def test_valid_records_become_commands_with_metadata() -> None:
    commands, dlq = FakeCommands(), FakeDeadLetters()
    event = order_placed("A-1")
    outcomes = await processor(commands, dlq).process([record(event, 7)])
    assert commands.calls == [("order-A-1", "OrderPlaced")]
    assert [o.result for o in outcomes] == ["started"]
    assert dlq.sent == []


def _mismatch_headers(event: OrderPlaced) -> list[tuple[str, bytes]]:
    return [("event-type", b"relayflow.orders.OrderCancelled")]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", b"x" * 5000), "oversize"),
        (lambda e: record(e, key=b"\xff\xfe"), "bad-key"),
        (lambda e: record(e, key=b"someone-else"), "bad-key"),
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", b""), "empty"),
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", b"not avro"), "unknown-framing"),
        (lambda e: record(e, headers=_mismatch_headers(e)), "header-mismatch"),
        (lambda e: record(e, headers=[("event-id", str(uuid.uuid4()).encode())]),
         "header-mismatch"),
    ],
    ids=["oversize", "non-utf8-key", "wrong-key", "empty", "garbage", "type-header",
         "id-header"],
)
async def test_bad_records_are_dead_lettered_with_reason(make: object, reason: str) -> None:
    commands, dlq = FakeCommands(), FakeDeadLetters()
    bad = make(order_placed("A-1"))  # type: ignore[operator]
    await processor(commands, dlq).process([bad])
    assert dlq.sent == [(0, reason)]
    assert commands.calls == []


async def test_event_without_route_on_topic_is_dead_lettered() -> None:
    commands, dlq = FakeCommands(), FakeDeadLetters()
    rec = record(order_placed("A-1"))
    rec.topic = "approvals.decisions"
    await processor(commands, dlq).process([rec])
    assert dlq.sent == [(0, "no-route")]


async def test_permanent_temporal_failure_is_dead_lettered() -> None:
    commands = FakeCommands(permanent=PermanentFailure("target-not-found", "gone"))
    dlq = FakeDeadLetters()
    await processor(commands, dlq).process([record(order_placed("A-1"))])
    assert dlq.sent == [(0, "target-not-found")]


async def test_transient_failures_are_retried_until_acknowledged() -> None:
    commands, dlq = FakeCommands(transient_failures=5), FakeDeadLetters()
    outcomes = await processor(commands, dlq).process([record(order_placed("A-1"))])
    assert [o.result for o in outcomes] == ["started"]
    assert commands.calls == [("order-A-1", "OrderPlaced")]
    assert dlq.sent == []


async def test_order_kept_within_a_key_while_keys_run_concurrently() -> None:
    # A's first record is slow; B must not wait for it, and A's records stay in order.
    commands = FakeCommands(delay_for={"A": 0.05})
    dlq = FakeDeadLetters()
    placed_a = order_placed("A")
    cancelled_a = OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                 order_id="A")
    batch = [record(placed_a, 0), record(order_placed("B"), 1), record(cancelled_a, 2)]
    await processor(commands, dlq).process(batch)
    assert commands.calls[0] == ("order-B", "OrderPlaced")
    assert [c for c in commands.calls if c[0] == "order-A"] == [
        ("order-A", "OrderPlaced"), ("order-A", "OrderCancelled")]


def test_dlq_headers_keep_originals_first_and_add_reason() -> None:
    original = [("event-type", b"x"), ("x-binary", b"\xff")]
    rec = Record(ORDERS_EVENTS, 3, 42, b"k", b"v", original)
    headers = dlq_headers(rec, "malformed-avro", "boom" * 5000)
    assert headers[:2] == original
    named = dict(headers)
    assert named[DLQ_REASON] == b"malformed-avro"
    assert named[DLQ_SOURCE_OFFSET] == b"42"
    assert len(named["dlq-error"]) <= 4096


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    delays = [backoff.delay(n) for n in range(1, 12)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert max(delays[6:]) <= 8.0
    assert len({round(d, 6) for d in delays}) > 1


def test_rpc_errors_are_classified() -> None:
    from temporalio.service import RPCError, RPCStatusCode  # noqa: PLC0415

    route = ROUTES.lookup(ORDERS_EVENTS, OrderCancelled.avro_name)
    assert route is not None
    unavailable = RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
    closed = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
    missing = RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")
    assert isinstance(classify_rpc_error(unavailable, route), TransientFailure)
    closed_failure = classify_rpc_error(closed, route)
    assert isinstance(closed_failure, PermanentFailure)
    assert closed_failure.reason == "target-closed"
    missing_failure = classify_rpc_error(missing, route)
    assert isinstance(missing_failure, PermanentFailure)
    assert missing_failure.reason == "target-not-found"
