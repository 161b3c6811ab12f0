"""Why a record was dead-lettered: every value of the ``dlq-reason`` header.

The values are part of the Kafka contract (other teams alert and route on
them), so they never change, and a record can only be dead-lettered with a
member of ``DlqReason``: the bridge's ``PermanentFailure`` and the codec's
``DecodeError`` take one, and mypy refuses a plain string. A new reason is
added here, with its one-line description, and to the README's dead-letter
table (a unit test compares the two); ``docs/asyncapi.yaml`` lists them from
here.

Readers stay lenient: a ``dlq-reason`` read back from a topic is a ``str``,
since a newer bridge may write a reason this version does not know.
"""

from __future__ import annotations

from typing import Literal, get_args

from schemas.described import DescribedStrEnum

__all__ = ["CODEC_REASONS", "CodecReason", "DlqReason"]


class DlqReason(DescribedStrEnum):
    """A ``dlq-reason`` header value, with what causes it and whether a replay can help.

    Each member is ``NAME = "value", "description"``; the member is the value
    (a ``str``), the description one line for humans (AsyncAPI, tools).

    Attributes:
        description: What caused it; whether ``relayflow dlq replay`` can help.
    """

    # The codec: the value is not a valid event (``DecodeError``).
    EMPTY = "empty", "The record has no value, or an empty one; replay cannot help."
    UNKNOWN_FRAMING = "unknown-framing", (
        "The value starts with neither the Avro single-object marker (C3 01) nor the "
        "Confluent magic byte (00); replay cannot help.")
    TRUNCATED = "truncated", "The value ends inside its framing header; replay cannot help."
    UNKNOWN_SCHEMA = "unknown-schema", (
        "The fingerprint or registry id names no schema the bridge knows (or no registry is "
        "configured); replay helps once the schema is deployed.")
    UNKNOWN_EVENT_TYPE = "unknown-event-type", (
        "A known schema the bridge has no model for; replay helps once a bridge with that "
        "model runs.")
    MALFORMED_AVRO = "malformed-avro", (
        "The body does not decode with its schema (cut short, trailing bytes, bad union "
        "branch); replay cannot help.")
    MALFORMED_JSON = "malformed-json", (
        "A JSON Schema event's body is not UTF-8 JSON; replay cannot help.")
    MALFORMED_PROTOBUF = "malformed-protobuf", (
        "A Protobuf event's body (or its Confluent message-index array) does not parse as "
        "its message; replay cannot help.")
    INVALID_EVENT = "invalid-event", (
        "Valid Avro whose values break the event's rules (e.g. an amount that is not the sum "
        "of its lines); replay cannot help.")

    # The decoder's other rules, checked around the codec.
    OVERSIZE = "oversize", (
        "The value is larger than `RELAYFLOW_MAX_PAYLOAD_BYTES`, or the event as Temporal "
        "would receive it (converted and encoded) is over Temporal's payload limit, the "
        "reason naming both sizes; replay helps only after raising the limit.")
    BAD_HEADER = "bad-header", (
        "More headers or header bytes than `RELAYFLOW_MAX_HEADER_COUNT` or "
        "`RELAYFLOW_MAX_HEADER_BYTES` allow, or a `correlation-id`, `causation-id` or "
        "`traceparent` over 200 characters; replay helps only after raising a limit.")
    BAD_KEY = "bad-key", (
        "The key is not UTF-8, or is not the event's business key; replay cannot help.")
    HEADER_MISMATCH = "header-mismatch", (
        "An `event-type` or `event-id` header contradicts the value; replay cannot help.")
    NO_ROUTE = "no-route", (
        "No route for this event type on this topic; replay helps once a route for it is "
        "deployed.")

    REPLY_TO_REFUSED = "reply-to-refused", (
        "A request's `reply-to` header names a topic the application does not declare as a "
        "reply topic (or is repeated, or not UTF-8); the update was not sent; replay cannot "
        "help.")

    # Temporal refused the command for good.
    TARGET_NOT_FOUND = "target-not-found", (
        "No workflow for the signal or cancel (a signal first waits "
        "`RELAYFLOW_BRIDGE_SIGNAL_HOLD_SECONDS` for it); replay helps once the workflow exists.")
    TARGET_CLOSED = "target-closed", (
        "The workflow has already closed (e.g. cancelling a finished order); replay cannot "
        "help.")
    REJECTED = "rejected", (
        "Temporal refused the command with a non-retryable error (see `dlq-error`); replay "
        "helps only once that cause is fixed.")

    # The bridge itself.
    PARKED = "parked", (
        "The record may be fine, but an earlier record of its key was dead-lettered and "
        "parked the key; replaying the key helps once that record's cause is fixed (or "
        "with `--parked-only`, which skips it).")
    INTERNAL_ERROR = "internal-error", (
        "No rule covers the failure (a bug; the exception is in `dlq-error`); replay helps "
        "once the bug is fixed.")


CodecReason = Literal[
    DlqReason.EMPTY,
    DlqReason.UNKNOWN_FRAMING,
    DlqReason.TRUNCATED,
    DlqReason.UNKNOWN_SCHEMA,
    DlqReason.UNKNOWN_EVENT_TYPE,
    DlqReason.MALFORMED_AVRO,
    DlqReason.MALFORMED_JSON,
    DlqReason.MALFORMED_PROTOBUF,
    DlqReason.INVALID_EVENT,
]
"""The reasons the codec gives (``DecodeError.reason``): mypy holds it to these."""

CODEC_REASONS: frozenset[DlqReason] = frozenset(get_args(CodecReason))
"""``CodecReason`` as a set."""
