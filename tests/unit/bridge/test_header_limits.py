"""Header limits: at ``max_header_count`` / ``max_header_bytes`` a record decodes, one past it
is dead-lettered as ``bad-header`` before its value is decoded or its schema fetched."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.decoding import Decoder
from bridge.failures import PermanentFailure
from relayflow.config import MIN_HEADER_BYTES, MIN_HEADER_COUNT, Settings
from relayflow.kafka.schema_registry import HttpSchemaRegistry
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import bridge_config
from schemas.envelope import MAX_ID_LENGTH
from schemas.formats import FormatCodec
from schemas.framing import to_record
from schemas.headers import (
    CAUSATION_ID,
    CORRELATION_ID,
    DLQ_REPLAY_ID,
    DLQ_REPLAY_LAST,
    DLQ_REPLAY_OF,
    TRACEPARENT,
)
from tests.helpers.fakes import Record
from tests.helpers.registry import registry_server
from tests.helpers.support import CODEC, order_placed, record

COUNT = 20
BYTES = 4000
Headers = list[tuple[str, bytes | None]]


def limited(codec: FormatCodec = CODEC, *, count: int = COUNT, size: int = BYTES) -> Decoder:
    return Decoder(codec, ROUTES, max_payload_bytes=4096, max_header_count=count,
                   max_header_bytes=size)


def header_bytes(headers: Headers) -> int:
    return sum(len(name.encode()) + len(value or b"") for name, value in headers)


def with_extra(headers: Headers, extra: int) -> Headers:
    """The contract headers plus ``extra`` more, alternately empty and None-valued."""
    return headers + [(f"x-{i}", None if i % 2 else b"") for i in range(extra)]


def padded(headers: Headers, total: int, name: str = "x-pad") -> Headers:
    """The contract headers plus one whose value brings names and values to ``total`` bytes."""
    return [*headers, (name, b"p" * (total - header_bytes(headers) - len(name.encode())))]


async def reason_of(decoder: Decoder, rec: Record) -> str:
    with pytest.raises(PermanentFailure) as info:
        await decoder.decode(rec)
    return info.value.reason


# ---------------------------------------------------------------- count


async def test_a_record_with_max_header_count_headers_decodes() -> None:
    event = order_placed("A-1")
    contract = record(event).headers
    headers = with_extra(contract, COUNT - len(contract))
    assert len(headers) == COUNT
    assert (await limited().decode(record(event, headers=headers))).inbound.event == event


async def test_one_header_past_max_header_count_is_a_bad_header() -> None:
    event = order_placed("A-1")
    contract = record(event).headers
    rec = record(event, headers=with_extra(contract, COUNT + 1 - len(contract)))
    with pytest.raises(PermanentFailure, match=f"21 headers > max_header_count {COUNT}") as info:
        await limited().decode(rec)
    assert info.value.reason == "bad-header"


# ---------------------------------------------------------------- bytes


@pytest.mark.parametrize("name", ["x-pad", "x-\u00e9\u00e9\u00e9"], ids=["ascii", "utf8-name"])
async def test_headers_of_exactly_max_header_bytes_decode(name: str) -> None:
    event = order_placed("A-1")
    headers = padded(record(event).headers, BYTES, name)
    assert header_bytes(headers) == BYTES
    assert (await limited().decode(record(event, headers=headers))).inbound.event == event


@pytest.mark.parametrize("name", ["x-pad", "x-\u00e9\u00e9\u00e9"], ids=["ascii", "utf8-name"])
async def test_one_byte_past_max_header_bytes_is_a_bad_header(name: str) -> None:
    event = order_placed("A-1")
    headers = padded(record(event).headers, BYTES + 1, name)
    with pytest.raises(PermanentFailure,
                       match=f"total {BYTES + 1} bytes > max_header_bytes {BYTES}") as info:
        await limited().decode(record(event, headers=headers))
    assert info.value.reason == "bad-header"


# ---------------------------------------------------------------- before anything else


@pytest.mark.parametrize("value", [b"", b"{not avro}", b"\xc3\x01" + b"\xff" * 8],
                         ids=["empty", "unknown-framing", "unknown-schema"])
async def test_header_limits_are_checked_before_the_value(value: bytes) -> None:
    too_many = [(f"x-{i}", b"") for i in range(COUNT + 1)]
    too_big = [("x-pad", b"p" * BYTES)]
    for headers in (too_many, too_big):
        rec = Record(ORDERS_EVENTS, 0, 0, b"A-1", value, list(headers))
        assert await reason_of(limited(), rec) == "bad-header"


async def test_past_the_limits_no_schema_is_fetched() -> None:
    with registry_server() as registry:
        codec = APP.codec(HttpSchemaRegistry(registry.url))
        framed = to_record(order_placed("A-1"), codec)
        reader = limited(APP.codec(HttpSchemaRegistry(registry.url)))
        rec = Record(ORDERS_EVENTS, 0, 0, framed.key, framed.value,
                     with_extra(list(framed.headers), COUNT))
        assert await reason_of(reader, rec) == "bad-header"
        assert registry.requests["GET by-id"] == 0
        rec.headers = list(framed.headers)
        assert (await reader.decode(rec)).inbound.event.key == "A-1"
        assert registry.requests["GET by-id"] == 1  # the same record within limits asks


# ---------------------------------------------------------------- settings


def test_the_limits_default_to_64_headers_and_16_kib() -> None:
    config = bridge_config(Settings())
    assert (config.max_header_count, config.max_header_bytes) == (64, 16 * 1024)


def test_the_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_MAX_HEADER_COUNT", "12")
    monkeypatch.setenv("RELAYFLOW_MAX_HEADER_BYTES", "3000")
    config = bridge_config(Settings())
    assert (config.max_header_count, config.max_header_bytes) == (12, 3000)


@pytest.mark.parametrize(("name", "value"), [("max_header_count", MIN_HEADER_COUNT - 1),
                                             ("max_header_bytes", MIN_HEADER_BYTES - 1)])
def test_limits_below_the_contracts_own_headers_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.model_validate({name: value})


async def test_the_lowest_limits_still_pass_the_contracts_longest_headers() -> None:
    event = order_placed("A-1")
    longest = {CORRELATION_ID: b"c" * MAX_ID_LENGTH, CAUSATION_ID: b"e" * MAX_ID_LENGTH,
               TRACEPARENT: b"t" * MAX_ID_LENGTH}
    headers: Headers = [
        (name, longest.get(name, value)) for name, value in record(event).headers]
    headers += [(name, longest[name]) for name in longest if name not in dict(headers)]
    # What a DLQ replay adds: its id (uuid4 hex), coordinates in the longest topic, the end mark.
    headers += [(DLQ_REPLAY_ID, b"0" * 32),
                (DLQ_REPLAY_OF, b"t" * 249 + b"/2147483647/9223372036854775807"),
                (DLQ_REPLAY_LAST, b"1")]
    assert len(headers) == MIN_HEADER_COUNT
    routed = await limited(count=MIN_HEADER_COUNT, size=MIN_HEADER_BYTES).decode(
        record(event, headers=headers))
    assert routed.inbound.meta.correlation_id == "c" * MAX_ID_LENGTH
