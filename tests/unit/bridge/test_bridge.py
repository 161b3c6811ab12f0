"""Bridge logic without services: decoding rules, per-key scheduling, retries, commits.

The fakes (``tests.helpers.fakes``) implement the bridge's own interfaces (``Commands``,
``DeadLetterSink``, ``Offsets``); no library is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from temporalio.common import RawValue

from bridge.commands import Delivery
from bridge.consumed import ConsumedRecord
from bridge.consumer import FetchConsumer, FetchProcessor, FetchReport
from bridge.decoding import Decoder
from bridge.failures import PermanentFailure, TransientFailure
from bridge.retry import Backoff
from bridge.routes import Action, Route, RouteTable
from relayflow.kafka.schema_registry import HttpSchemaRegistry
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import ApprovalDecided, OrderPlaced
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS
from schemas.dead_letters import DlqReason
from schemas.framing import to_record
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, FakeOffsets, Record
from tests.helpers.registry import registry_server
from tests.helpers.support import CODEC, FAST, cancelled, decoder, order_placed, processor, record

SIGNALS = RouteTable([Route(APPROVALS_DECISIONS, ApprovalDecided, Action.SIGNAL, "OrderSaga",
                            "order-{order_id}", signal="approval_decided")])


def decision(order_id: str) -> ApprovalDecided:
    return ApprovalDecided(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           approval_id=f"ap-{order_id}", order_id=order_id,
                           decision="APPROVED", decided_by="ops")


# ---------------------------------------------------------------- decoding


async def test_valid_record_becomes_routed_inbound_with_metadata() -> None:
    event = order_placed("A-1")
    routed = await decoder().decode(record(event, 7, partition=3))
    assert routed.route.action == "start"
    assert routed.inbound.event == event
    meta = routed.inbound.meta
    assert (meta.topic, meta.partition, meta.offset) == (ORDERS_EVENTS, 3, 7)
    assert (meta.event_type, meta.event_id) == (OrderPlaced.avro_name, str(event.event_id))
    assert meta.correlation_id == str(event.event_id)  # no header: a new flow starts here
    assert meta.traceparent


async def test_headers_fill_the_metadata() -> None:
    event = order_placed("A-1")
    rec = to_record(event, CODEC, correlation_id="corr-1", causation_id="cause-1",
                    traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    routed = await decoder().decode(
        Record(ORDERS_EVENTS, 0, 0, rec.key, rec.value, list(rec.headers)))
    assert (routed.inbound.meta.correlation_id, routed.inbound.meta.causation_id) == (
        "corr-1", "cause-1")


async def test_inbound_keeps_the_concrete_event_when_serialized() -> None:
    routed = await decoder().decode(record(order_placed("A-1")))
    dumped = routed.inbound.model_dump(mode="json")
    assert dumped["event"]["items"][0]["sku"] == "SKU-TEA"


async def test_headers_without_contract_headers_are_fine() -> None:
    routed = await decoder().decode(record(order_placed("A-1"), headers=[("x-other", None)]))
    assert routed.inbound.event.key == "A-1"


def _event_type(name: bytes) -> list[tuple[str, bytes | None]]:
    return [("event-type", name)]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", b"\xc3\x01" + b"x" * 5000), "oversize"),
        (lambda e: record(e, key=b"\xff\xfe"), "bad-key"),
        (lambda e: record(e, key=b"someone-else"), "bad-key"),
        (lambda e: Record(ORDERS_EVENTS, 0, 0, None, to_record(e, CODEC).value), "bad-key"),
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", None), "empty"),
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", b"not avro"), "unknown-framing"),
        (lambda _: Record(ORDERS_EVENTS, 0, 0, b"A-1", b"\xc3\x01garbage"), "truncated"),
        (lambda e: record(e, headers=_event_type(b"relayflow.orders.OrderCancelled")),
         "header-mismatch"),
        (lambda e: record(e, headers=_event_type(b"relayflow.orders.Order\xffPlaced")),
         "header-mismatch"),
        (lambda e: record(e, headers=[("event-id", str(uuid.uuid4()).encode())]),
         "header-mismatch"),
        (lambda e: record(e, topic=APPROVALS_DECISIONS), "no-route"),
    ],
    ids=["oversize", "non-utf8-key", "wrong-key", "no-key", "empty", "garbage", "truncated",
         "type-header", "non-utf8-type-header", "id-header", "no-route-on-topic"],
)
async def test_bad_records_are_refused_with_their_reason(make: Callable[[OrderPlaced], Record],
                                                    reason: str) -> None:
    with pytest.raises(PermanentFailure) as raised:
        await decoder(limit=4096).decode(make(order_placed("A-1")))
    assert raised.value.reason == reason


async def test_oversize_is_checked_before_decoding() -> None:
    # Valid Avro but over the limit: the limit wins, the codec never runs.
    rec = record(order_placed("A-1"))
    assert rec.value is not None
    with pytest.raises(PermanentFailure) as raised:
        await decoder(limit=len(rec.value) - 1).decode(rec)
    assert raised.value.reason == "oversize"


# ---------------------------------------------------------------- scheduling


async def eventually(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (bounded)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the fakes expose state, not events
            await asyncio.sleep(0)


async def test_keys_run_concurrently_and_each_key_in_order() -> None:
    # A's first command hangs until released; B and C must finish meanwhile,
    # and A's cancel must wait for A's start.
    gate = asyncio.Event()
    commands = FakeCommands(gates={"A": gate})
    batch = [record(order_placed("A"), 0), record(order_placed("B"), 1),
             record(cancelled("A"), 2), record(order_placed("C"), 3)]
    work = asyncio.create_task(processor(commands).process(batch))
    await eventually(lambda: len(commands.calls) == 2)
    assert {c[0] for c in commands.calls} == {"order-B", "order-C"}
    del commands.gates["A"]
    gate.set()
    report = await asyncio.wait_for(work, 5)
    assert report.results == ["started"] * 4
    assert [c[1:] for c in commands.calls if c[0] == "order-A"] == [
        ("OrderPlaced", 0), ("OrderCancelled", 2)]


async def test_same_key_on_two_partitions_are_two_groups() -> None:
    gate = asyncio.Event()
    commands = FakeCommands(gates={"A": gate})
    batch = [record(order_placed("A"), 0, partition=0), record(order_placed("A"), 0, partition=1)]
    work = asyncio.create_task(processor(commands).process(batch))
    await eventually(lambda: commands.in_flight == 2)
    gate.set()
    await asyncio.wait_for(work, 5)


async def test_concurrency_is_bounded() -> None:
    gate = asyncio.Event()
    keys = [f"K{i}" for i in range(10)]
    commands = FakeCommands(gates=dict.fromkeys(keys, gate))
    work = asyncio.create_task(processor(commands, concurrency=3).process(
        [record(order_placed(k), i) for i, k in enumerate(keys)]))
    await eventually(lambda: commands.in_flight == 3)
    for _ in range(20):
        await asyncio.sleep(0)
    assert commands.in_flight == 3
    gate.set()
    await asyncio.wait_for(work, 5)
    assert commands.max_in_flight == 3
    assert len(commands.calls) == 10


async def test_transient_failures_are_retried_until_acknowledged() -> None:
    commands = FakeCommands(transient={"A": 5})
    report = await processor(commands).process([record(order_placed("A"))])
    assert report.results == ["started"]
    assert commands.attempts["A"] == 6
    assert commands.calls == [("order-A", "OrderPlaced", 0)]


async def test_outage_is_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    commands = FakeCommands(outage=8)
    with caplog.at_level(logging.INFO, logger="bridge"):
        await processor(commands).process([record(order_placed("A")), record(order_placed("B"))])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("Temporal unavailable" in m for m in warnings) == 1
    assert sum("Temporal available again" in m for m in warnings) == 1


async def test_permanent_failures_are_dead_lettered_and_the_key_moves_on() -> None:
    commands = FakeCommands(permanent={"A": PermanentFailure(DlqReason.TARGET_NOT_FOUND, "gone")})
    dlq = FakeDeadLetters()
    report = await processor(commands, dlq).process([
        record(cancelled("A"), 0), Record(ORDERS_EVENTS, 0, 1, b"B", b"junk"),
        record(order_placed("B"), 2)])
    assert report.results == ["dlq:target-not-found", "dlq:unknown-framing", "started"]
    assert [(offset, reason) for offset, reason, _ in dlq.sent] == [
        (0, "target-not-found"), (1, "unknown-framing")]


async def test_unexpected_errors_are_dead_lettered_not_crashed_on() -> None:
    class Broken(FakeCommands):
        async def execute(self, route: Route, inbound: Delivery,  # noqa: ARG002
                          argument: RawValue | None = None) -> str:  # noqa: ARG002
            raise ZeroDivisionError("bug")

    dlq = FakeDeadLetters()
    report = await processor(Broken(), dlq).process([record(order_placed("A"))])
    assert report.results == ["dlq:internal-error"]
    assert "ZeroDivisionError" in dlq.sent[0][2]


async def test_dead_letter_write_is_retried_until_durable() -> None:
    dlq = FakeDeadLetters(refusals=3)
    report = await processor(FakeCommands(), dlq).process([
        Record(ORDERS_EVENTS, 0, 0, b"A", b"junk")])
    assert report.results == ["dlq:unknown-framing"]
    assert len(dlq.sent) == 1


async def test_spent_budget_leaves_the_rest_of_the_key_pending() -> None:
    # Temporal stays down for A longer than the budget: A's records stay pending
    # (in order: its second record is never tried), B finishes.
    commands = FakeCommands(transient={"A": 10**6})
    batch = [record(order_placed("A"), 0), record(cancelled("A"), 1), record(order_placed("B"), 2)]
    slow = FetchProcessor(decoder(), commands, FakeDeadLetters(),
                          backoff=Backoff(initial=0.01, maximum=0.01))
    report = await asyncio.wait_for(slow.process(batch, budget=0.05), 5)
    assert report.results == [None, None, "started"]
    assert report.pending == 2
    assert [c[0] for c in commands.calls] == ["order-B"]


async def _until_finished(held: FetchProcessor, batch: list[Record]) -> list[FetchReport]:
    """Fetch ``batch`` again and again, as the consumer would, until it finished (bounded)."""
    reports = [await held.process(batch, budget=5)]
    while reports[-1].pending and len(reports) < 200:
        await asyncio.sleep(max(reports[-1].retry_after.values(), default=0))
        reports.append(await held.process(batch, budget=5))
    return reports


async def test_a_signal_for_a_workflow_not_started_yet_is_held_until_it_exists() -> None:
    commands, dlq = FakeCommands(not_found={"A": 3}), FakeDeadLetters()
    held = FetchProcessor(Decoder(CODEC, SIGNALS, max_payload_bytes=4096), commands, dlq,
                          backoff=FAST, signal_hold=60)
    reports = await _until_finished(held, [record(decision("A"), 0, topic=APPROVALS_DECISIONS)])
    # Held three times: left unfinished with a retry delay for its partition, never slept on.
    assert [r.results for r in reports] == [[None], [None], [None], ["started"]]
    assert all(TopicPartition(APPROVALS_DECISIONS, 0) in r.retry_after for r in reports[:3])
    assert reports[-1].retry_after == {}
    assert commands.attempts["A"] == 4
    assert dlq.sent == []


async def test_a_held_signal_is_dead_lettered_when_the_hold_expires() -> None:
    # The hold is counted from the first attempt, across refetches.
    commands, dlq = FakeCommands(not_found={"A": 10**6}), FakeDeadLetters()
    held = FetchProcessor(Decoder(CODEC, SIGNALS, max_payload_bytes=4096), commands, dlq,
                          backoff=Backoff(initial=0.01, maximum=0.01), signal_hold=0.2)
    reports = await _until_finished(held, [record(decision("A"), 0, topic=APPROVALS_DECISIONS)])
    assert reports[-1].results == ["dlq:target-not-found"]
    assert len(reports) > 2
    assert commands.attempts["A"] == len(reports)


async def test_a_held_signal_does_not_hold_up_other_keys() -> None:
    commands = FakeCommands(not_found={"A": 10**6})
    held = FetchProcessor(Decoder(CODEC, SIGNALS, max_payload_bytes=4096), commands,
                          FakeDeadLetters(), backoff=FAST, signal_hold=60)
    batch = [record(decision("A"), 0, topic=APPROVALS_DECISIONS),
             record(decision("A"), 1, topic=APPROVALS_DECISIONS),
             record(decision("B"), 0, partition=1, topic=APPROVALS_DECISIONS)]
    report = await asyncio.wait_for(held.process(batch, budget=60), 5)
    assert report.results == [None, None, "started"]  # A's later record waits its turn
    assert list(report.retry_after) == [TopicPartition(APPROVALS_DECISIONS, 0)]


async def test_a_held_record_pauses_its_partition() -> None:
    offsets = FakeOffsets()
    held = FetchProcessor(Decoder(CODEC, SIGNALS, max_payload_bytes=4096),
                          FakeCommands(not_found={"A": 1}), FakeDeadLetters(),
                          backoff=FAST, signal_hold=60)
    consumer = FetchConsumer(held, offsets, budget=60)
    await consumer.consume([record(decision("A"), 7, topic=APPROVALS_DECISIONS)], consumer=None)
    tp = TopicPartition(APPROVALS_DECISIONS, 0)
    assert offsets.rewinds == [{tp: 7}]
    assert list(offsets.pauses[0]) == [tp]
    assert offsets.commits == [{}]  # nothing of the partition is done


async def test_only_signals_are_held() -> None:
    commands, dlq = FakeCommands(not_found={"A": 1}), FakeDeadLetters()
    held = FetchProcessor(decoder(), commands, dlq, backoff=FAST, signal_hold=60)
    report = await held.process([record(cancelled("A"))])
    assert report.results == ["dlq:target-not-found"]


# ---------------------------------------------------------------- commits


def _tp(partition: int) -> TopicPartition:
    return TopicPartition(ORDERS_EVENTS, partition)


async def test_a_finished_batch_commits_each_partition_past_its_last_record() -> None:
    offsets = FakeOffsets()
    consumer = FetchConsumer(processor(FakeCommands()), offsets, budget=60)
    batch = [record(order_placed("A"), 10, partition=0), record(order_placed("B"), 4, partition=1),
             record(order_placed("C"), 11, partition=0)]
    await consumer.consume(batch, consumer=None)
    assert offsets.commits == [{_tp(0): 12, _tp(1): 5}]
    assert offsets.rewinds == [{}]


async def test_an_unfinished_record_holds_back_its_partition_only() -> None:
    offsets = FakeOffsets()
    commands = FakeCommands(transient={"A": 10**6})
    slow = FetchProcessor(decoder(), commands, FakeDeadLetters(),
                          backoff=Backoff(initial=0.01, maximum=0.01))
    consumer = FetchConsumer(slow, offsets, budget=0.05)
    batch = [record(order_placed("B"), 10, partition=0), record(order_placed("A"), 11, partition=0),
             record(order_placed("C"), 12, partition=0), record(order_placed("D"), 3, partition=1)]
    report = await asyncio.wait_for(consumer.consume(batch, consumer=None), 5)
    assert report.results == ["started", None, "started", "started"]
    assert offsets.commits == [{_tp(0): 11, _tp(1): 4}]
    assert offsets.rewinds == [{_tp(0): 11}]


async def test_a_failed_batch_commits_nothing_and_is_fetched_again() -> None:
    class Exploding(FakeDeadLetters):
        async def send(self, record: ConsumedRecord, reason: str, error: str) -> tuple[int, int]:
            del record, reason, error
            raise RuntimeError("bug in the dead-letter path")

    offsets = FakeOffsets()
    consumer = FetchConsumer(processor(FakeCommands(), Exploding()), offsets, budget=60)
    batch = [record(order_placed("A"), 5), Record(ORDERS_EVENTS, 0, 6, b"A", b"junk")]
    with pytest.raises(ExceptionGroup):
        await consumer.consume(batch, consumer=None)
    assert offsets.commits == []
    assert offsets.rewinds == [{_tp(0): 5}]


async def test_a_commit_refused_after_a_rebalance_is_not_an_error() -> None:
    offsets = FakeOffsets(refuse_commit=True)
    consumer = FetchConsumer(processor(FakeCommands()), offsets, budget=60)
    report = await consumer.consume([record(order_placed("A"), 5)], consumer=None)
    assert report.results == ["started"]


# ---------------------------------------------------------------- shutdown


async def test_shutdown_finishes_what_is_in_flight_commits_it_and_starts_nothing_more() -> None:
    gate = asyncio.Event()
    commands = FakeCommands(gates={"A": gate})
    offsets = FakeOffsets()
    consumer = FetchConsumer(processor(commands, concurrency=1), offsets, budget=60)
    batch = [record(order_placed("A"), 0), record(order_placed("B"), 1),
             record(order_placed("C"), 2)]
    consuming = asyncio.create_task(consumer.consume(batch, consumer=None))
    await eventually(lambda: commands.in_flight == 1)  # A is with Temporal, B and C wait
    consumer.stop()
    gate.set()
    report = await asyncio.wait_for(consuming, 5)
    assert report.results == ["started", None, None]
    assert offsets.commits == [{_tp(0): 1}]
    assert offsets.rewinds == [{_tp(0): 1}]
    assert [c[0] for c in commands.calls] == ["order-A"]


async def test_shutdown_ends_a_retry_wait_at_once() -> None:
    commands = FakeCommands(outage=10**6)  # Temporal is down
    slow = FetchProcessor(decoder(), commands, FakeDeadLetters(),
                          backoff=Backoff(initial=30, maximum=30))
    consumer = FetchConsumer(slow, FakeOffsets(), budget=600)
    consuming = asyncio.create_task(consumer.consume([record(order_placed("A"), 0)], None))
    await eventually(lambda: commands.attempts["A"] == 1)
    consumer.stop()
    report = await asyncio.wait_for(consuming, 5)  # not the 30 s backoff
    assert report.results == [None]


async def test_a_schema_registry_outage_waits_and_never_dead_letters(
        caplog: pytest.LogCaptureFixture) -> None:
    with registry_server() as registry:
        writer = APP.codec(HttpSchemaRegistry(registry.url))
        rec = to_record(order_placed("A"), writer)
        confluent = Record(ORDERS_EVENTS, 0, 0, rec.key, rec.value, list(rec.headers))
        reader = APP.codec(HttpSchemaRegistry(registry.url))
        commands, dlq = FakeCommands(), FakeDeadLetters()
        registry.failing = {"GET"}
        with caplog.at_level(logging.INFO, logger="bridge"):
            running = asyncio.create_task(FetchProcessor(
                Decoder(reader, ROUTES, max_payload_bytes=4096), commands, dlq,
                backoff=FAST).process([confluent, record(order_placed("B"), 1)]))
            async with asyncio.timeout(10):
                while registry.requests["GET by-id"] < 3:  # noqa: ASYNC110 - a thread's counter
                    await asyncio.sleep(0.01)
            assert dlq.sent == []
            assert [c[0] for c in commands.calls] == ["order-B"]  # other framings flow
            registry.failing = set()
            report = await running
    assert report.results == ["started", "started"]
    assert dlq.sent == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("schema registry unavailable" in m for m in warnings) == 1
    assert sum("schema registry available again" in m for m in warnings) == 1


async def test_decoder_turns_registry_answers_into_retry_or_dead_letter() -> None:
    event = order_placed("A")
    with registry_server() as registry:
        data = APP.codec(HttpSchemaRegistry(registry.url)).encode(event)
        confluent = Decoder(APP.codec(HttpSchemaRegistry(registry.url)),
                            ROUTES, max_payload_bytes=4096)
        known = Record(ORDERS_EVENTS, 0, 5, b"A", data)
        unknown = Record(ORDERS_EVENTS, 0, 6, b"A", b"\x00" + struct.pack(">I", 4242) + data[5:])

        registry.failing = {"GET"}
        with pytest.raises(TransientFailure, match="schema registry"):
            await confluent.decode(known)

        registry.failing = set()
        with pytest.raises(PermanentFailure) as info:
            await confluent.decode(unknown)
        assert info.value.reason == "unknown-schema"

        asked = registry.requests["GET by-id"]
        assert (await confluent.decode(known)).inbound.event == event
        assert registry.requests["GET by-id"] == asked + 1  # the failed lookup cached nothing
        assert (await confluent.decode(known)).inbound.event == event
        assert registry.requests["GET by-id"] == asked + 1  # known now: no further request
        with pytest.raises(PermanentFailure) as info:  # no registry configured: nothing to ask
            await decoder().decode(known)
        assert info.value.reason == "unknown-schema"
