"""Batched signals (a route with ``batch``): consecutive records of one key go as one signal,
committed only once Temporal acknowledged it; bad records, order and failures as unbatched."""

from __future__ import annotations

from bridge.consumer import FetchConsumer, FetchProcessor
from bridge.decoding import Decoder
from bridge.failures import PermanentFailure
from bridge.routes import MAX_BATCH, Action, IdReuse, Route, RouteTable
from schemas.dead_letters import DlqReason
from schemas.framing import to_record
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, FakeOffsets, FakeParking, Record
from tests.helpers.support import FAST
from tests.helpers.tallies.app import APP, ROUTES, TALLIES_EVENTS
from tests.helpers.tallies.events import TallyAdded, added

CODEC = APP.codec()


def _processor(commands: FakeCommands, dlq: FakeDeadLetters, *,
               routes: RouteTable | None = None) -> FetchProcessor:
    return FetchProcessor(Decoder(CODEC, routes or APP.route_table(), max_payload_bytes=4096),
                          commands, dlq, backoff=FAST)


def _record(event: TallyAdded, offset: int, partition: int = 0) -> Record:
    rec = to_record(event, CODEC)
    return Record(TALLIES_EVENTS, partition, offset, rec.key, rec.value, list(rec.headers))


def _burst(tally: str, count: int, start: int = 0, partition: int = 0) -> list[Record]:
    return [_record(added(tally, seq), start + seq, partition) for seq in range(count)]


async def test_consecutive_records_of_one_key_go_as_one_signal_per_key() -> None:
    commands, dlq = FakeCommands(), FakeDeadLetters()
    records = [*_burst("a", 3), *_burst("b", 2, start=3)]
    records.insert(1, records.pop(3))  # interleaved: a0 b3 a1 a2 b4

    report = await _processor(commands, dlq).process(records)

    assert report.results == ["started"] * 5
    assert sorted(commands.signals) == [[0, 1, 2], [3, 4]]  # per key, in offset order


async def test_a_batch_holds_at_most_the_routes_count() -> None:
    small = RouteTable([Route(TALLIES_EVENTS, TallyAdded, Action.SIGNAL_WITH_START, "TallyEntity",
                              "tally-{tally_id}", "entity-events", batch=2)])
    commands = FakeCommands()
    await _processor(commands, FakeDeadLetters(), routes=small).process(_burst("a", 5))
    assert commands.signals == [[0, 1], [2, 3], [4]]


async def test_a_bad_record_splits_the_batch_and_is_dead_lettered_in_its_place() -> None:
    commands, dlq = FakeCommands(), FakeDeadLetters()
    records = _burst("a", 5)
    records[2] = Record(TALLIES_EVENTS, 0, 2, b"a", b"\xc3\x01garbage")

    report = await _processor(commands, dlq).process(records)

    assert report.results == ["started", "started", "dlq:truncated", "started", "started"]
    assert commands.signals == [[0, 1], [3, 4]]
    assert [(offset, reason) for offset, reason, _ in dlq.sent] == [(2, "truncated")]


async def test_records_after_a_dead_letter_of_their_key_stay_parked_though_decoded_ahead() -> None:
    # The fetch is decoded before anything is sent; whether a key is parked is
    # decided at each record's turn, after the bad record before it parked it.
    commands, dlq, parking = FakeCommands(), FakeDeadLetters(), FakeParking()
    records = _burst("a", 3)
    records[0] = Record(TALLIES_EVENTS, 0, 0, b"a", b"\xc3\x01garbage")
    processor = FetchProcessor(Decoder(CODEC, APP.route_table(), max_payload_bytes=4096),
                               commands, dlq, backoff=FAST, parking=parking)

    report = await processor.process(records)

    assert report.results == ["dlq:truncated", "dlq:parked", "dlq:parked"]
    assert commands.signals == []


async def test_nothing_of_a_batch_is_committed_before_temporal_acknowledged_it() -> None:
    commands, offsets = FakeCommands(outage=10**6), FakeOffsets()
    consumer = FetchConsumer(_processor(commands, FakeDeadLetters()), offsets, budget=0.3)

    report = await consumer.consume(_burst("a", 4), None)

    assert report.results == [None] * 4
    assert offsets.commits == [{}]
    assert len(offsets.rewinds) == 1
    assert list(offsets.rewinds[0].values()) == [0]  # all fetched again


async def test_a_batch_is_sent_again_whole_after_a_transient_failure() -> None:
    commands, offsets = FakeCommands(outage=2), FakeOffsets()
    consumer = FetchConsumer(_processor(commands, FakeDeadLetters()), offsets, budget=30)

    report = await consumer.consume(_burst("a", 4), None)

    assert report.results == ["started"] * 4
    assert commands.signals == [[0, 1, 2, 3]]
    assert [list(c.values()) for c in offsets.commits] == [[4]]


async def test_a_batch_refused_for_good_is_handled_record_by_record() -> None:
    commands, dlq = FakeCommands(), FakeDeadLetters()
    commands.permanent["a"] = PermanentFailure(DlqReason.TARGET_CLOSED, "closed")

    report = await _processor(commands, dlq).process([*_burst("a", 3), *_burst("b", 1, 3)])

    assert report.results == ["dlq:target-closed"] * 3 + ["started"]
    assert [offset for offset, _, _ in dlq.sent] == [0, 1, 2]


def test_batch_is_for_signal_routes_and_bounded() -> None:
    def route(action: Action, batch: int) -> Route:
        return Route(TALLIES_EVENTS, TallyAdded, action, "TallyEntity", "tally-{tally_id}",
                     "entity-events" if action != Action.START else None, batch=batch)

    assert route(Action.SIGNAL, MAX_BATCH).problems() == []
    assert route(Action.START, 10).problems()
    assert route(Action.SIGNAL, 0).problems()
    assert route(Action.SIGNAL, MAX_BATCH + 1).problems()


def test_routes_refuse_duplicates_unless_they_say_otherwise() -> None:
    [entity] = ROUTES
    assert entity.id_reuse is IdReuse.AFTER_CLOSE
    assert Route(TALLIES_EVENTS, TallyAdded, Action.START, "W", "w-{tally_id}").id_reuse is (
        IdReuse.NEVER)


async def test_without_batch_every_record_is_its_own_signal() -> None:
    plain = RouteTable([Route(TALLIES_EVENTS, TallyAdded, Action.SIGNAL_WITH_START,
                              "TallyEntity", "tally-{tally_id}", "entity-events")])
    commands = FakeCommands()
    await _processor(commands, FakeDeadLetters(), routes=plain).process(_burst("a", 3))
    assert commands.signals == [[0], [1], [2]]
