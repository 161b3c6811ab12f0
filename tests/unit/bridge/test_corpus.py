"""The bad-input corpus: every record gets exactly the reason it claims, deterministically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from temporalio.common import RawValue

from bridge.commands import Delivery
from bridge.consumed import ConsumedRecord
from bridge.consumer import FetchProcessor
from bridge.decoding import Decoder
from bridge.failures import PermanentFailure
from bridge.retry import Backoff
from bridge.routes import Route
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import OrderPlaced
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import APPROVALS_DECISIONS, BATCHES_REQUESTS, ORDERS_EVENTS
from tests.helpers.corpus import CorpusRecord, bad_records, good_records, mixed_stream

CODEC = APP.codec()
LIMIT = 524288
DECODER = Decoder(CODEC, ROUTES, max_payload_bytes=LIMIT)
BAD = bad_records(CODEC, max_payload_bytes=LIMIT)
GOOD = good_records(CODEC, 25)
REJECTED = [r for r in BAD if r.expected_reason is not None]
ACCEPTED = [r for r in BAD if r.expected_reason is None]

REQUIRED_REASONS = {"empty", "unknown-framing", "truncated", "unknown-schema", "malformed-avro",
                    "invalid-event", "oversize", "bad-key", "header-mismatch", "no-route"}
# Name prefix of each category the corpus must cover.
REQUIRED_CATEGORIES = {
    "truncated-header-", "truncated-confluent-header-", "truncated-body-",
    "fingerprint-random-", "wrong-schema-", "accepted-headers-missing", "header-event-type-",
    "header-event-id-", "bad-key-", "empty-", "oversize-", "framing-json", "framing-random-",
    "unknown-type-", "invalid-", "no-route-", "trailing-", "confluent-unknown-id-",
    "approvals-", "batches-",
}


@dataclass(frozen=True)
class Consumed:
    """A corpus record as the bridge consumes it (shaped like aiokafka's ConsumerRecord)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]


def consumed(record: CorpusRecord, offset: int = 0) -> Consumed:
    return Consumed(record.topic, 0, offset, record.key, record.value, record.headers)


def name_of(record: CorpusRecord) -> str:
    return record.name


def names(records: Sequence[CorpusRecord]) -> list[str]:
    return [r.name for r in records]


# ---------------------------------------------------------------- shape


def test_corpus_is_big_and_every_reason_appears() -> None:
    assert len(REJECTED) >= 60
    reasons = {r.expected_reason for r in REJECTED}
    assert reasons >= REQUIRED_REASONS
    assert sum(r.topic == ORDERS_EVENTS for r in REJECTED) >= 60
    assert {r.topic for r in REJECTED} == {ORDERS_EVENTS, APPROVALS_DECISIONS, BATCHES_REQUESTS}


@pytest.mark.parametrize("prefix", sorted(REQUIRED_CATEGORIES))
def test_every_category_is_covered(prefix: str) -> None:
    assert any(name.startswith(prefix) for name in names(BAD))


def test_names_and_keys_are_unique_across_bad_and_good() -> None:
    everything = [*BAD, *GOOD]
    assert len(set(names(everything))) == len(everything)
    keys = [r.key for r in everything]
    assert len(set(keys)) == len(keys)


def test_records_that_must_decode_carry_an_order_and_rejected_ones_do_not() -> None:
    assert all(r.order_id is not None for r in [*ACCEPTED, *GOOD])
    assert all(r.order_id is None for r in REJECTED)
    assert all(r.name.startswith("accepted-") for r in ACCEPTED)


def test_oversize_values_are_one_byte_over_the_limit() -> None:
    oversize = [r for r in REJECTED if r.expected_reason == "oversize"]
    assert len(oversize) >= 3
    assert all(len(r.value or b"") == LIMIT + 1 for r in oversize)
    at_limit = [r for r in BAD if r.name.startswith("at-limit-")]
    assert at_limit
    assert all(len(r.value or b"") == LIMIT for r in at_limit)


def test_a_limit_too_small_for_the_corpus_is_refused() -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        bad_records(CODEC, max_payload_bytes=4096)


# ---------------------------------------------------------------- what the decoder says


@pytest.mark.parametrize("record", REJECTED, ids=name_of)
async def test_bad_record_is_refused_with_its_reason(record: CorpusRecord) -> None:
    with pytest.raises(PermanentFailure) as raised:
        await DECODER.decode(consumed(record))
    assert raised.value.reason == record.expected_reason


@pytest.mark.parametrize("record", [*ACCEPTED, *GOOD[:5]], ids=name_of)
async def test_accepted_record_decodes_to_its_order(record: CorpusRecord) -> None:
    routed = await DECODER.decode(consumed(record))
    assert isinstance(routed.inbound.event, OrderPlaced)
    assert routed.inbound.event.order_id == record.order_id
    assert routed.route.id_for(routed.inbound.event) == f"order-{record.order_id}"


async def test_good_records_are_routine_orders_that_complete() -> None:
    threshold = ReferenceSettings.model_fields["approval_threshold_cents"].default
    for record in [*GOOD, *ACCEPTED]:
        order = (await DECODER.decode(consumed(record))).inbound.event
        assert isinstance(order, OrderPlaced)
        assert order.amount_cents < threshold
        assert order.shipping_country == "DE"
        assert order.approval_timeout_seconds is None
        assert not any(line.sku.startswith("OOS-") for line in order.items)
    assert [r.order_id for r in GOOD[:2]] == ["good-s0-00000", "good-s0-00001"]


# ---------------------------------------------------------------- determinism


def test_same_seed_same_bytes() -> None:
    assert bad_records(CODEC, max_payload_bytes=LIMIT) == BAD
    assert good_records(CODEC, 25) == GOOD
    assert mixed_stream(CODEC, bad=BAD, good=GOOD) == mixed_stream(CODEC, bad=BAD, good=GOOD)


def test_another_seed_gives_other_keys_and_bytes() -> None:
    other_bad = bad_records(CODEC, seed=7, max_payload_bytes=LIMIT)
    other_good = good_records(CODEC, 25, seed=7)
    assert names(other_bad) == names(BAD)
    # Only None and b"" cannot carry the seed.
    shared = {r.key for r in other_bad + other_good} & {r.key for r in BAD + GOOD}
    assert shared == {None, b""}
    assert [r.value for r in other_good] != [r.value for r in GOOD]
    assert mixed_stream(CODEC, bad=BAD, good=GOOD, seed=7) != mixed_stream(CODEC, bad=BAD,
                                                                           good=GOOD)


def test_mixed_stream_interleaves_keeping_each_order() -> None:
    mixed = mixed_stream(CODEC, bad=BAD, good=GOOD, seed=3)
    assert sorted(names(mixed)) == sorted(names(BAD + GOOD))
    assert [r for r in mixed if r in GOOD] == GOOD
    assert [r for r in mixed if r in BAD] == BAD
    first_good = names(mixed).index(GOOD[0].name)
    assert first_good < len(BAD)  # interleaved, not appended


def test_mixed_stream_refuses_a_shared_key() -> None:
    with pytest.raises(ValueError, match="unique"):
        mixed_stream(CODEC, bad=GOOD[:1], good=GOOD[:1])


# ---------------------------------------------------------------- through the bridge's processor


class StartEverything:
    """Our ``Commands``: every routed event is started."""

    async def execute(self, route: Route, inbound: Delivery,
                      argument: RawValue | None = None) -> str:  # noqa: ARG002
        del route, inbound
        return "started"


class KeepDeadLetters:
    """Our ``DeadLetterSink``: remembers the reasons."""

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}

    async def send(self, record: ConsumedRecord, reason: str, error: str) -> tuple[int, int]:
        del error
        self.reasons[record.offset] = reason
        return record.partition, record.offset


async def test_mixed_stream_through_the_processor_ends_as_expected() -> None:
    mixed = mixed_stream(CODEC, bad=BAD, good=GOOD)
    dead_letters = KeepDeadLetters()
    processor = FetchProcessor(DECODER, StartEverything(), dead_letters,
                               backoff=Backoff(initial=0.001, maximum=0.002))
    report = await processor.process([consumed(r, offset) for offset, r in enumerate(mixed)])
    expected = [f"dlq:{r.expected_reason}" if r.expected_reason else "started" for r in mixed]
    assert list(report.results) == expected
    assert len(dead_letters.reasons) == len(REJECTED)
