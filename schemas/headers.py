"""Kafka record headers of the relayflow contract.

Every event carries ``event-type``, ``event-id``, ``correlation-id``,
``causation-id``, ``traceparent`` and ``content-type``; dead-lettered records
keep those untouched and gain the ``dlq-*`` headers. A request may carry
``reply-to`` (``schemas.replies``). An outcome whose value is too large for its
topic carries an empty value and the ``claim-check-*`` headers instead
(``ClaimCheckReference``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AVRO_CONTENT_TYPE",
    "CAUSATION_ID",
    "CLAIM_CHECK_BYTES",
    "CLAIM_CHECK_CONTENT_TYPE",
    "CLAIM_CHECK_KEY",
    "CLAIM_CHECK_SHA256",
    "CONTENT_TYPE",
    "CORRELATION_ID",
    "DLQ_ERROR",
    "DLQ_FAILED_AT",
    "DLQ_REASON",
    "DLQ_REPLAY_ID",
    "DLQ_REPLAY_LAST",
    "DLQ_REPLAY_OF",
    "DLQ_SOURCE_OFFSET",
    "DLQ_SOURCE_PARTITION",
    "DLQ_SOURCE_TOPIC",
    "DLQ_TRUNCATED",
    "DLQ_VALUE_BYTES",
    "DLQ_VALUE_SHA256",
    "EVENT_ID",
    "EVENT_TYPE",
    "REPLY_TO",
    "TRACEPARENT",
    "ClaimCheckReference",
    "EventHeaders",
    "KafkaHeaders",
    "new_traceparent",
]

EVENT_TYPE = "event-type"
EVENT_ID = "event-id"
CORRELATION_ID = "correlation-id"
CAUSATION_ID = "causation-id"
TRACEPARENT = "traceparent"
CONTENT_TYPE = "content-type"
AVRO_CONTENT_TYPE = "application/vnd.apache.avro+binary"
REPLY_TO = "reply-to"
"""On a request (an update route's record): the reply topic to answer on; it must be one the
application declares as a reply topic (``Topic.replies``), else the request is dead-lettered."""

DLQ_REASON = "dlq-reason"
DLQ_ERROR = "dlq-error"
DLQ_SOURCE_TOPIC = "dlq-source-topic"
DLQ_SOURCE_PARTITION = "dlq-source-partition"
DLQ_SOURCE_OFFSET = "dlq-source-offset"
DLQ_FAILED_AT = "dlq-failed-at"
DLQ_TRUNCATED = "dlq-truncated"
"""On a bounded dead-letter copy: what was cut, ``value`` and/or ``headers`` (comma-separated).

Present only when the whole record could not be written to the DLQ (too large
for the producer or the DLQ topic); the copy is evidence, not the record."""
DLQ_VALUE_BYTES = "dlq-value-bytes"
"""On a bounded dead-letter copy: the length of the original value, in bytes."""
DLQ_VALUE_SHA256 = "dlq-value-sha256"
"""On a bounded dead-letter copy: the SHA-256 of the whole original value, lowercase hex."""
DLQ_REPLAY_ID = "dlq-replay-id"
"""On a record replayed from the DLQ: the replay it belongs to (passes its parked key)."""
DLQ_REPLAY_OF = "dlq-replay-of"
"""On a replayed record: ``<dlq topic>/<partition>/<offset>`` it was copied from."""
DLQ_REPLAY_LAST = "dlq-replay-last"
"""On the last record of a replay: once it is processed, the key is released."""

CLAIM_CHECK_KEY = "claim-check-key"
"""On a record whose value is stored by reference: the value's name in the claim-check
store (``outcomes/<sha256>``: a key under the bucket's prefix on S3, a file under the folder).
Its presence marks the record as a reference; the record's own value is then empty."""
CLAIM_CHECK_BYTES = "claim-check-bytes"
"""On a record whose value is stored by reference: the stored value's length, in bytes."""
CLAIM_CHECK_SHA256 = "claim-check-sha256"
"""On a record whose value is stored by reference: the SHA-256 of the stored value, lowercase
hex (a reader checks what it fetched against it)."""
CLAIM_CHECK_CONTENT_TYPE = "claim-check-content-type"
"""On a record whose value is stored by reference: the stored value's MIME type (the
``content-type`` the value would have had; the record's own ``content-type`` says the same)."""

KafkaHeaders = Sequence[tuple[str, bytes]]
"""Headers as aiokafka gives and takes them."""


def new_traceparent() -> str:
    """A fresh W3C ``traceparent`` (version 00, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@dataclass(frozen=True, slots=True)
class EventHeaders:
    """The contract headers of one record.

    Attributes:
        event_type: Avro full name of the value's schema.
        event_id: UUID of the event (same as the value's ``event_id``).
        correlation_id: Id shared by every event of one business flow.
        causation_id: Event id of the event that caused this one; empty for
            events that start a flow.
        traceparent: W3C trace context.
        content_type: MIME type of the value.
    """

    event_type: str
    event_id: str
    correlation_id: str
    causation_id: str = ""
    traceparent: str = ""
    content_type: str = AVRO_CONTENT_TYPE

    def to_kafka(self) -> list[tuple[str, bytes]]:
        """Encode as Kafka headers (UTF-8 values); empty values are left out."""
        pairs = (
            (EVENT_TYPE, self.event_type),
            (EVENT_ID, self.event_id),
            (CORRELATION_ID, self.correlation_id),
            (CAUSATION_ID, self.causation_id),
            (TRACEPARENT, self.traceparent),
            (CONTENT_TYPE, self.content_type),
        )
        return [(name, value.encode()) for name, value in pairs if value]

    @classmethod
    def from_kafka(cls, headers: Iterable[tuple[str, bytes | None]]) -> EventHeaders:
        """Read contract headers leniently: missing ones become empty strings.

        Undecodable (non-UTF-8) values are replaced rather than rejected here;
        whether an event without usable headers is acceptable is the caller's
        decision.
        """
        found: dict[str, str] = {}
        for name, raw in headers:
            if raw is not None and name not in found:
                found[name] = raw.decode("utf-8", errors="replace")
        return cls(
            event_type=found.get(EVENT_TYPE, ""),
            event_id=found.get(EVENT_ID, ""),
            correlation_id=found.get(CORRELATION_ID, ""),
            causation_id=found.get(CAUSATION_ID, ""),
            traceparent=found.get(TRACEPARENT, ""),
            content_type=found.get(CONTENT_TYPE, ""),
        )


@dataclass(frozen=True, slots=True)
class ClaimCheckReference:
    """Where the value of a record too large for its topic is, as its headers say.

    Store-independent: the key is a name within the configured claim-check store,
    and the size and digest let any reader check what it fetched.

    Attributes:
        key: ``claim-check-key``: the value's name in the store, ``outcomes/<sha256>``.
        size: ``claim-check-bytes``: its length.
        sha256: ``claim-check-sha256``: its SHA-256, lowercase hex.
        content_type: ``claim-check-content-type``: its MIME type.
    """

    key: str
    size: int
    sha256: str
    content_type: str

    def to_kafka(self) -> list[tuple[str, bytes]]:
        """The four ``claim-check-*`` headers."""
        return [(CLAIM_CHECK_KEY, self.key.encode()), (CLAIM_CHECK_BYTES, str(self.size).encode()),
                (CLAIM_CHECK_SHA256, self.sha256.encode()),
                (CLAIM_CHECK_CONTENT_TYPE, self.content_type.encode())]

    @classmethod
    def from_kafka(cls, headers: Iterable[tuple[str, bytes | None]]) -> ClaimCheckReference | None:
        """The reference a record's headers carry; None when it has no ``claim-check-key``.

        Raises:
            ValueError: ``claim-check-key`` is there but the other headers are missing or bad.
        """
        found: dict[str, str] = {}
        for name, raw in headers:
            if raw is not None and name.startswith("claim-check-") and name not in found:
                found[name] = raw.decode("utf-8", errors="replace")
        if CLAIM_CHECK_KEY not in found:
            return None
        try:
            return cls(key=found[CLAIM_CHECK_KEY], size=int(found[CLAIM_CHECK_BYTES]),
                       sha256=found[CLAIM_CHECK_SHA256],
                       content_type=found.get(CLAIM_CHECK_CONTENT_TYPE, ""))
        except (KeyError, ValueError) as error:
            raise ValueError(f"incomplete claim-check headers: {error}") from None
