"""The bridge measures an event as Temporal will see it and refuses what Temporal would refuse.

The measure is the SDK's own conversion (pydantic JSON, then the payload codec),
so a record small on Kafka but large as JSON is ``oversize`` before any call, and
the reason names both sizes. ``tests/integration/test_payload_size.py`` holds
the limit to what a real Temporal server enforces.
"""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from bridge.commands import TEMPORAL_PAYLOAD_LIMIT, PayloadSizes, classify_temporal_error
from bridge.failures import PermanentFailure
from bridge.routes import Action
from relayflow.config.bridge import TEMPORAL_PAYLOAD_LIMIT as SETTINGS_LIMIT
from relayflow.config.settings import SettingError, load_settings
from relayflow.temporal.payload_codec import EncryptionCodec, new_key_entry, parse_keys
from schemas.dead_letters import DlqReason
from tests.helpers.payload_sizes import batch_of, largest_accepted


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_just_under_passes_and_just_over_is_oversize_with_both_sizes(
        encrypted: bool) -> None:
    converter = pydantic_data_converter
    if encrypted:
        keys = parse_keys(new_key_entry("k1"), source="test")
        converter = dataclasses.replace(converter, payload_codec=EncryptionCodec(keys))
    sizes = PayloadSizes(converter)
    at_limit = await largest_accepted(sizes)
    assert await sizes.measure(batch_of(at_limit, "x")) <= TEMPORAL_PAYLOAD_LIMIT
    await sizes.check(batch_of(at_limit, "x"), kafka_bytes=123)

    with pytest.raises(PermanentFailure) as refused:
        await sizes.check(batch_of(at_limit + 1, "x"), kafka_bytes=123)
    assert refused.value.reason is DlqReason.OVERSIZE
    over = await sizes.measure(batch_of(at_limit + 1, "x"))
    assert f"123 bytes on Kafka encode to {over} bytes" in str(refused.value)
    assert str(TEMPORAL_PAYLOAD_LIMIT) in str(refused.value)


async def test_small_on_kafka_can_be_over_the_limit_as_json() -> None:
    # 400 000 control characters: about 400 KB of Avro, 2.4 MB of JSON.
    with pytest.raises(PermanentFailure) as refused:
        await PayloadSizes(pydantic_data_converter).check(batch_of(400_000), kafka_bytes=400_050)
    assert refused.value.reason is DlqReason.OVERSIZE


async def test_the_encryption_envelope_counts() -> None:
    keys = parse_keys(new_key_entry("k1"), source="test")
    plain = PayloadSizes(pydantic_data_converter)
    sealed = PayloadSizes(dataclasses.replace(pydantic_data_converter,
                                              payload_codec=EncryptionCodec(keys)))
    assert await largest_accepted(sealed) < await largest_accepted(plain)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_the_measured_conversion_is_the_argument_sent(encrypted: bool) -> None:
    # The SDK takes check's answer (a RawValue) as it is: what the worker decodes
    # must be what it decoded when the SDK converted the event itself.
    converter = pydantic_data_converter
    if encrypted:
        keys = parse_keys(new_key_entry("k1"), source="test")
        converter = dataclasses.replace(converter, payload_codec=EncryptionCodec(keys))
    inbound = batch_of(100, "x")
    sent = await PayloadSizes(converter).check(inbound, kafka_bytes=123)

    assert sent is not None
    unsent = converter.payload_converter.to_payloads([inbound])[0]
    assert sent.payload == unsent
    (through,) = await converter.encode([sent])
    assert through.metadata.get("encoding") == (b"binary/encrypted" if encrypted
                                                else b"json/plain")
    assert await converter.decode([through], [type(inbound)]) == [inbound]


@pytest.mark.parametrize("length", [0, 1, 60, 100, 16_300, 16_400, 2_097_000, 2_097_200])
async def test_the_size_is_the_payloads_messages_across_its_length_prefix_widths(
        length: int) -> None:
    # Summed payload by payload (no Payloads message built): the same bytes as the message,
    # whichever width the varint length prefix takes.
    sizes = PayloadSizes(pydantic_data_converter)
    inbound = batch_of(length, "x")
    message = Payloads(payloads=pydantic_data_converter.payload_converter.to_payloads([inbound]))

    assert await sizes.measure(inbound) == message.ByteSize()


def test_a_blob_refused_by_the_server_is_oversize_not_rejected() -> None:
    error = RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")
    failure = classify_temporal_error(error, Action.START)
    assert isinstance(failure, PermanentFailure)
    assert failure.reason is DlqReason.OVERSIZE
    other = classify_temporal_error(
        RPCError("bad id", RPCStatusCode.INVALID_ARGUMENT, b""), Action.START)
    assert isinstance(other, PermanentFailure)
    assert other.reason is DlqReason.REJECTED


def test_max_payload_bytes_is_bounded_by_temporals_limit() -> None:
    assert SETTINGS_LIMIT == TEMPORAL_PAYLOAD_LIMIT
    assert load_settings(max_payload_bytes=SETTINGS_LIMIT).max_payload_bytes == SETTINGS_LIMIT
    with pytest.raises(SettingError, match="RELAYFLOW_MAX_PAYLOAD_BYTES"):
        load_settings(max_payload_bytes=SETTINGS_LIMIT + 1)
