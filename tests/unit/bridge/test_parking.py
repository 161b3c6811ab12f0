"""Parked keys: a dead letter parks its key, later records of it follow, replays release it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.consumer import FetchProcessor
from bridge.parking import ParkEntry, replay_of
from relayflow.reference.topics import ORDERS_EVENTS
from schemas.dead_letters import DlqReason
from schemas.headers import DLQ_REPLAY_ID, DLQ_REPLAY_LAST
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, FakeParking, Record
from tests.helpers.support import FAST, cancelled, decoder, order_placed, record


def parking_processor(commands: FakeCommands, parking: FakeParking,
                      dlq: FakeDeadLetters | None = None) -> FetchProcessor:
    return FetchProcessor(decoder(), commands, dlq or FakeDeadLetters(), backoff=FAST,
                          parking=parking)


def junk(key: bytes, offset: int) -> Record:
    return Record(ORDERS_EVENTS, 0, offset, key, b"\xc3\x01cut")


def replayed(rec: Record, replay: str, *, last: bool = False) -> Record:
    extra = [(DLQ_REPLAY_ID, replay.encode())] + ([(DLQ_REPLAY_LAST, b"1")] if last else [])
    return Record(rec.topic, rec.partition, rec.offset + 100, rec.key, rec.value,
                  [*rec.headers, *extra])


def entry(**changes: object) -> ParkEntry:
    base = ParkEntry(reason="truncated", source_partition=0, source_offset=0, dlq_partition=0,
                     dlq_offset=0, parked_at=datetime.now(UTC))
    return base.model_copy(update=changes)


async def test_a_dead_letter_parks_its_key_and_later_records_of_it_follow() -> None:
    parking, commands = FakeParking(), FakeCommands()
    batch = [junk(b"A", 0), record(order_placed("A"), 1), record(order_placed("B"), 2),
             record(cancelled("A"), 3)]
    report = await parking_processor(commands, parking).process(batch)
    assert report.results == ["dlq:truncated", "dlq:parked", "started", "dlq:parked"]
    assert [c[0] for c in commands.calls] == ["order-B"]  # A's events never reached Temporal
    parked = parking.get(ORDERS_EVENTS, b"A")
    assert parked is not None
    assert (parked.reason, parked.source_offset, parked.dlq_offset) == ("truncated", 0, 0)


@pytest.mark.parametrize("key", [None, b""])
async def test_a_record_without_a_key_parks_nothing(key: bytes | None) -> None:
    parking = FakeParking()
    report = await parking_processor(FakeCommands(), parking).process(
        [Record(ORDERS_EVENTS, 0, 0, key, b"junk"), Record(ORDERS_EVENTS, 0, 1, key, b"junk")])
    assert report.results == ["dlq:unknown-framing", "dlq:unknown-framing"]  # never "parked"
    assert parking.entries == {}


async def test_a_replay_passes_the_key_and_its_last_record_releases_it() -> None:
    parking = FakeParking({(ORDERS_EVENTS, b"A"): entry(replay_id="r1")})
    commands = FakeCommands()
    placed, cancel = record(order_placed("A"), 1), record(cancelled("A"), 2)
    batch = [replayed(placed, "r1"), replayed(cancel, "r1", last=True)]
    report = await parking_processor(commands, parking).process(batch)
    assert report.results == ["started", "started"]
    assert parking.entries == {}
    assert replay_of(batch[1]) == ("r1", True)


async def test_another_replays_records_and_plain_records_stay_parked() -> None:
    parking = FakeParking({(ORDERS_EVENTS, b"A"): entry(replay_id="r2")})
    batch = [replayed(record(order_placed("A"), 1), "r1", last=True)]
    report = await parking_processor(FakeCommands(), parking).process(batch)
    assert report.results == ["dlq:parked"]
    assert parking.get(ORDERS_EVENTS, b"A") is not None


async def test_a_replayed_record_that_fails_again_reparks_the_key_from_it() -> None:
    parking = FakeParking({(ORDERS_EVENTS, b"A"): entry(replay_id="r1")})
    commands, dlq = FakeCommands(), FakeDeadLetters()
    # The first parking's letters:
    dlq.sent.extend([(0, DlqReason.TRUNCATED, ""), (1, DlqReason.PARKED, "")])
    batch = [replayed(junk(b"A", 0), "r1"),
             replayed(record(order_placed("A"), 1), "r1", last=True)]
    report = await parking_processor(commands, parking, dlq).process(batch)
    assert report.results == ["dlq:truncated", "dlq:parked"]
    again = parking.get(ORDERS_EVENTS, b"A")
    assert again is not None
    assert (again.replay_id, again.dlq_offset) == (None, 2)  # from the failed replayed copy
    assert commands.calls == []


async def test_records_arriving_during_a_replay_keep_the_key_parked_after_it() -> None:
    parking = FakeParking({(ORDERS_EVENTS, b"A"): entry(replay_id="r1")})
    dlq = FakeDeadLetters()
    batch = [replayed(record(order_placed("A"), 1), "r1"),
             record(cancelled("A"), 50),  # a new record, not part of the replay
             replayed(record(cancelled("A"), 2), "r1", last=True)]
    report = await parking_processor(FakeCommands(), parking, dlq).process(batch)
    assert report.results == ["started", "dlq:parked", "started"]
    still = parking.get(ORDERS_EVENTS, b"A")
    assert still is not None
    assert (still.reason, still.replay_id, still.dlq_offset) == (DlqReason.PARKED, None, 0)


async def test_a_park_that_cannot_be_written_is_retried() -> None:
    parking = FakeParking(refusals=2)
    report = await parking_processor(FakeCommands(), parking).process([junk(b"A", 0)])
    assert report.results == ["dlq:truncated"]
    assert parking.get(ORDERS_EVENTS, b"A") is not None
