"""Dead-letter records: originals untouched, dlq-* headers added, partition kept when possible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka.errors import KafkaTimeoutError

from bridge.dead_letters import MAX_ERROR_BYTES, DeadLetters, dlq_headers
from schemas.dead_letters import DlqReason
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from tests.helpers.fakes import FakeProducer, Record

ORIGINAL: list[tuple[str, bytes | None]] = [
    ("event-type", b"x"), ("x-binary", b"\xff\x00"), ("x-null", None), ("event-type", b"dup")]


def test_original_headers_stay_first_byte_for_byte_then_dlq_headers() -> None:
    rec = Record("orders.events", 3, 42, b"k", b"v", list(ORIGINAL))
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    headers = dlq_headers(rec, DlqReason.MALFORMED_AVRO, "boom", failed_at=at)
    assert headers[:4] == ORIGINAL
    assert dict(headers[4:]) == {
        DLQ_REASON: b"malformed-avro",
        DLQ_ERROR: b"boom",
        DLQ_SOURCE_TOPIC: b"orders.events",
        DLQ_SOURCE_PARTITION: b"3",
        DLQ_SOURCE_OFFSET: b"42",
        DLQ_FAILED_AT: b"2026-01-02T01:04:05.678Z",
    }


def test_failed_at_defaults_to_now_in_utc() -> None:
    headers = dict(dlq_headers(Record("t", 0, 0, None, None), DlqReason.EMPTY, "e"))
    stamp = headers[DLQ_FAILED_AT]
    assert stamp is not None
    parsed = datetime.fromisoformat(stamp.decode())
    assert parsed.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - parsed) < timedelta(minutes=5)


def test_error_is_truncated_on_a_character_boundary() -> None:
    headers = dict(dlq_headers(Record("t", 0, 0, None, None), DlqReason.EMPTY, "é" * 5000))
    error = headers[DLQ_ERROR]
    assert error is not None
    assert len(error) <= MAX_ERROR_BYTES
    error.decode("utf-8")  # still valid UTF-8


async def test_record_goes_to_its_topics_dlq_on_the_same_partition() -> None:
    producer = FakeProducer({"orders.events.dlq": 6})
    rec = Record("orders.events", 5, 9, b"A-1", b"\xc3\x01bad", list(ORIGINAL))
    assert await DeadLetters(producer).send(rec, DlqReason.TRUNCATED, "short body") == (5, 0)
    [sent] = producer.sent
    assert (sent["topic"], sent["partition"], sent["key"], sent["value"]) == (
        "orders.events.dlq", 5, b"A-1", b"\xc3\x01bad")
    assert sent["headers"][:4] == ORIGINAL


async def test_a_smaller_dlq_topic_is_partitioned_by_key() -> None:
    producer = FakeProducer({"orders.events.dlq": 3})
    await DeadLetters(producer).send(Record("orders.events", 5, 9, b"A-1", b"v"),
                                     DlqReason.EMPTY, "e")
    assert producer.sent[0]["partition"] is None


async def test_send_failures_propagate_for_the_caller_to_retry() -> None:
    producer = FakeProducer({"orders.events.dlq": 6}, failures=1)
    dead = DeadLetters(producer)
    rec = Record("orders.events", 0, 1, b"k", b"v")
    with pytest.raises(KafkaTimeoutError):
        await dead.send(rec, DlqReason.EMPTY, "e")
    await dead.send(rec, DlqReason.EMPTY, "e")
    assert len(producer.sent) == 1


async def test_dead_lettering_is_logged_with_coordinates(caplog: pytest.LogCaptureFixture) -> None:
    producer = FakeProducer({"orders.events.dlq": 6})
    await DeadLetters(producer).send(Record("orders.events", 2, 77, b"k", b"v"), DlqReason.BAD_KEY,
                                    "why")
    assert any("orders.events[2]@77" in r.getMessage() and "bad-key" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
