"""A record too large to dead-letter whole still reaches the DLQ bounded; the partition moves on."""

from __future__ import annotations

import dataclasses
import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)

from bridge.app import _parser
from bridge.config import BridgeConfig
from bridge.consumer import FetchProcessor
from bridge.dead_letters import (
    TRUNCATED_HEADER_BYTES,
    TRUNCATED_VALUE_BYTES,
    DeadLetterRefused,
    DeadLetters,
    bounded_copy,
    dlq_headers,
)
from bridge.failures import refused
from relayflow.reference.topics import ORDERS_EVENTS
from schemas.dead_letters import DlqReason
from schemas.headers import (
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DLQ_TRUNCATED,
    DLQ_VALUE_BYTES,
    DLQ_VALUE_SHA256,
)
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, FakeParking, FakeProducer, Record
from tests.helpers.support import FAST, decoder, order_placed, record

BIG = bytes(range(256)) * 4096  # 1 MiB, not Avro
HEADERS: list[tuple[str, bytes | None]] = [("a", b"1" * 100), ("b", None), ("c", b"3" * 9000),
                                            ("d", b"4")]


def _dlq(producer: FakeProducer) -> DeadLetters:
    return DeadLetters(producer)


def test_a_bounded_copy_keeps_a_prefix_a_digest_and_the_headers_that_fit() -> None:
    rec = Record(ORDERS_EVENTS, 2, 7, b"k", BIG, list(HEADERS))
    full = dlq_headers(rec, DlqReason.OVERSIZE, "too big")
    value, headers = bounded_copy(rec, full, value_bytes=1000, header_bytes=200)
    assert value == BIG[:1000]
    # In order, up to the first that does not fit ("c"): never a later, smaller one.
    assert headers[:2] == HEADERS[:2]
    extra = dict(headers[2:])
    assert extra[DLQ_TRUNCATED] == b"value,headers"
    assert extra[DLQ_VALUE_BYTES] == str(len(BIG)).encode()
    assert extra[DLQ_VALUE_SHA256] == hashlib.sha256(BIG).hexdigest().encode()
    assert (extra[DLQ_SOURCE_TOPIC], extra[DLQ_SOURCE_PARTITION], extra[DLQ_SOURCE_OFFSET]) == (
        ORDERS_EVENTS.encode(), b"2", b"7")
    assert extra[DLQ_REASON] == b"oversize"
    assert "c" not in extra


def test_a_bounded_copy_names_only_what_it_cut() -> None:
    rec = Record(ORDERS_EVENTS, 0, 0, b"k", BIG, [("a", b"1")])
    _, headers = bounded_copy(rec, dlq_headers(rec, DlqReason.OVERSIZE, "e"), value_bytes=10,
                              header_bytes=100)
    assert dict(headers)[DLQ_TRUNCATED] == b"value"
    small = Record(ORDERS_EVENTS, 0, 0, b"k", b"v", list(HEADERS))
    value, headers = bounded_copy(small, dlq_headers(small, DlqReason.BAD_HEADER, "e"),
                                  value_bytes=10, header_bytes=100)
    assert value == b"v"
    assert dict(headers)[DLQ_TRUNCATED] == b"headers"


async def test_a_record_that_fits_goes_whole_and_unmarked() -> None:
    producer = FakeProducer({"orders.events.dlq": 6}, max_bytes=1 << 20)
    rec = Record(ORDERS_EVENTS, 1, 3, b"k", b"v" * 1000, list(HEADERS))
    await _dlq(producer).send(rec, DlqReason.MALFORMED_AVRO, "e")
    [sent] = producer.sent
    assert sent["value"] == rec.value
    assert sent["headers"][:4] == HEADERS
    assert DLQ_TRUNCATED not in dict(sent["headers"])


async def test_a_record_the_dlq_refuses_whole_is_sent_bounded_once() -> None:
    # A DLQ topic with max.message.bytes of 32 KiB: the whole copy is refused once, then
    # the bounded copy lands on the source partition, with the source coordinates.
    producer = FakeProducer({"orders.events.dlq": 6}, max_bytes=32 * 1024)
    rec = Record(ORDERS_EVENTS, 4, 11, b"A-1", BIG, list(HEADERS))
    assert await _dlq(producer).send(rec, DlqReason.OVERSIZE, "1 MiB > 512 KiB") == (4, 0)
    assert producer.refused == 1
    [sent] = producer.sent
    assert sent["value"] == BIG[:TRUNCATED_VALUE_BYTES]
    assert (sent["key"], sent["partition"]) == (b"A-1", 4)
    headers = dict(sent["headers"])
    assert headers[DLQ_VALUE_SHA256] == hashlib.sha256(BIG).hexdigest().encode()
    assert headers[DLQ_SOURCE_OFFSET] == b"11"
    # "c" would take the original headers past the budget.
    assert TRUNCATED_HEADER_BYTES < 100 + 9000
    assert [name for name, _ in sent["headers"][:2]] == ["a", "b"]
    assert headers[DLQ_TRUNCATED] == b"value,headers"


async def test_a_dlq_refusing_the_bounded_copy_gets_the_key_and_dlq_headers_alone() -> None:
    producer = FakeProducer({"orders.events.dlq": 6}, max_bytes=2048)
    rec = Record(ORDERS_EVENTS, 0, 5, b"A-1", BIG, list(HEADERS))
    await _dlq(producer).send(rec, DlqReason.OVERSIZE, "e")
    assert producer.refused == 2
    [sent] = producer.sent
    assert sent["value"] == b""
    assert all(name.startswith("dlq-") for name, _ in sent["headers"])
    assert dict(sent["headers"])[DLQ_VALUE_BYTES] == str(len(BIG)).encode()


async def test_a_dlq_refusing_every_copy_is_a_dlq_fault_retried_as_such() -> None:
    producer = FakeProducer({"orders.events.dlq": 6}, max_bytes=10)
    with pytest.raises(DeadLetterRefused, match=r"max\.message\.bytes"):
        await _dlq(producer).send(Record(ORDERS_EVENTS, 0, 5, b"k", BIG), DlqReason.OVERSIZE, "e")
    assert producer.refused == 3  # each copy once, never the same bytes twice


async def test_an_outage_is_not_a_refusal_the_caller_retries_the_whole_record() -> None:
    producer = FakeProducer({"orders.events.dlq": 6}, failures=1)
    rec = Record(ORDERS_EVENTS, 0, 5, b"k", b"v")
    with pytest.raises(KafkaTimeoutError):
        await _dlq(producer).send(rec, DlqReason.EMPTY, "e")
    assert producer.sent == []


@pytest.mark.parametrize(("error", "permanent"), [
    (MessageSizeTooLargeError(), True), (RecordTooLargeError(), True),
    (KafkaTimeoutError(), False), (KafkaConnectionError(), False)])
def test_producer_errors_about_the_record_are_permanent(error: Exception,
                                                        permanent: bool) -> None:
    assert refused(error) is permanent


async def test_the_partition_moves_on_past_a_record_too_large_for_its_dlq() -> None:
    # The consumer end to end on the real DeadLetters: before, the size error was
    # retried as an outage and the records behind it never ran.
    producer = FakeProducer({"orders.events.dlq": 6}, max_bytes=32 * 1024)
    commands = FakeCommands()
    fetch = FetchProcessor(decoder(limit=512 * 1024), commands, DeadLetters(producer),
                           backoff=FAST)
    bomb = Record(ORDERS_EVENTS, 0, 0, b"A", BIG, [])
    report = await fetch.process([bomb, record(order_placed("A"), 1),
                                  record(order_placed("B"), 2)], budget=10)
    assert report.results == ["dlq:oversize", "started", "started"]
    assert producer.refused == 1
    assert not fetch.dlq.degraded


async def test_a_park_entry_the_broker_refuses_is_not_retried_forever() -> None:
    # A key of megabytes: its park entry is too large for the parked-keys topic.
    parking = FakeParking(refusals=100, refusal=MessageSizeTooLargeError)
    fetch = FetchProcessor(decoder(), FakeCommands(), FakeDeadLetters(), backoff=FAST,
                           parking=parking)
    report = await fetch.process([Record(ORDERS_EVENTS, 0, 0, b"A", b"junk"),
                                  record(order_placed("B"), 1)], budget=10)
    assert report.results == ["dlq:unknown-framing", "started"]
    assert parking.refusals == 99  # tried once
    assert not fetch.dlq.degraded


async def test_header_bombs_reach_faststreams_parser_without_their_headers() -> None:
    config = BridgeConfig("g", "q", max_header_count=10, max_header_bytes=100)
    bomb = ConsumerRecord(ORDERS_EVENTS, 0, 0, 0, 0, b"k", b"v", None, 0, 0,
                          [(f"h{i}", b"v") for i in range(11)])
    heavy = dataclasses.replace(bomb, offset=1, headers=[("h", b"v" * 100)])
    fine = dataclasses.replace(bomb, offset=2, headers=[("h", b"\xff")])
    given: list[Any] = []

    async def faststream(records: Any) -> Any:
        given.extend(records)
        return SimpleNamespace(raw_message=None)

    message = await _parser(config)([bomb, heavy, fine], faststream)
    assert [r.headers for r in given] == [[], [], [("h", "\ufffd".encode())]]
    assert message.raw_message == (bomb, heavy, fine)  # the handler gets them untouched
