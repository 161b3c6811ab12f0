"""A stored record as operators read it: decoded event, dead-letter reason, parked key.

``relayflow tail``, ``relayflow status`` and ``relayflow dlq show`` show
records through ``shown``: the event when the value decodes (else why not),
the ``dlq-*`` headers of a dead letter, and the entry of a parked key
(``relayflow.parked-keys``: a ``ParkEntry``, or a tombstone when released).
A record whose value went by claim check (``claim-check-*`` headers) shows the
event stored in the claim-check store, fetched and checked against its digest.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from activities.claim_check import BlobStore
from bridge.parking import ParkEntry
from relayflow.kafka.reads import StoredRecord, resolved
from schemas.codec import DecodeError
from schemas.formats import EventCodec
from schemas.headers import EVENT_TYPE, ClaimCheckReference
from schemas.models import Event
from schemas.topics import DLQ_SUFFIX, PARKED_KEYS

__all__ = ["ShownRecord", "key_text", "shown"]


def key_text(key: bytes | None) -> str:
    r"""A record key as text: UTF-8 decoded; bytes that are not UTF-8 escaped visibly (``\xff``)."""
    return (key or b"").decode(errors="backslashreplace")


@dataclass(frozen=True, slots=True)
class ShownRecord:
    """A record with what it means.

    Attributes:
        record: The record as stored.
        event: The decoded event (None when the value does not decode or is no event).
        problem: Why the value did not decode ('' when it did, or is not meant to).
        parked: On the parked-keys topic: the entry (None on a tombstone: released).
        claim_check: Where the value is when it went by claim check (None: in the record).
    """

    record: StoredRecord
    event: Event | None = None
    problem: str = ""
    parked: ParkEntry | None = None
    claim_check: ClaimCheckReference | None = None

    @property
    def key(self) -> str:
        """The record key as text (``key_text``: bytes that are not UTF-8 escaped visibly)."""
        return key_text(self.record.key)

    @property
    def dead_letter(self) -> bool:
        """Whether the record is on a dead-letter topic."""
        return self.record.topic.endswith(DLQ_SUFFIX)

    @property
    def at(self) -> str:
        """The record's timestamp, ISO 8601 UTC ('' when unknown)."""
        millis = self.record.timestamp
        if millis is None:
            return ""
        return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")

    def as_json(self) -> dict[str, Any]:
        """One JSON object: coordinates, key, headers, event or problem, dead letter, parked."""
        r = self.record
        found: dict[str, Any] = {
            "topic": r.topic, "partition": r.partition, "offset": r.offset,
            "timestamp": self.at or None, "key": self.key,
            "headers": {name: value.decode(errors="replace") for name, value in r.headers},
            "event_type": r.event_type or None,
            "event": self.event.model_dump(mode="json") if self.event else None,
            "problem": self.problem or None,
        }
        if self.claim_check is not None:
            found["claim_check"] = asdict(self.claim_check)
        if self.dead_letter:
            topic, partition, offset = r.source
            found["dead_letter"] = {"reason": r.reason, "error": r.error,
                                    "source": {"topic": topic, "partition": partition,
                                               "offset": offset},
                                    "failed_at": r.failed_at}
        if r.topic == PARKED_KEYS:
            found["parked"] = self.parked.model_dump(mode="json") if self.parked else None
        return found

    def as_line(self) -> str:
        """One line for people: coordinates, time, key, then what the record says."""
        r = self.record
        head = f"{r.coordinates} {self.at or '-'} key={self.key!r}"
        if r.topic == PARKED_KEYS:
            if self.parked is None:
                return f"{head} released" + (f" ({self.problem})" if self.problem else "")
            p = self.parked
            return (f"{head} parked: {p.reason} at [{p.source_partition}]@{p.source_offset}, "
                    f"dead letters from {p.dlq_partition}/{p.dlq_offset}"
                    + (f", replay {p.replay_id} in progress" if p.replay_id else ""))
        parts = [head]
        if self.dead_letter:
            parts.append("DEAD LETTER reason={} from {}[{}]@{}".format(r.reason, *r.source))
            if r.error:
                parts.append(f"error={r.error[:200]!r}")
        parts.append(r.event_type or "-")
        parts.append(self.event.model_dump_json() if self.event
                     else f"(value not decoded: {self.problem})" if self.problem else "")
        return " ".join(p for p in parts if p)


async def shown(record: StoredRecord, codec: EventCodec,
                blobs: BlobStore | None = None) -> ShownRecord:
    """What ``record`` means, decoded with ``codec`` (the schema registry asked when needed).

    Args:
        record: The record.
        codec: Decodes its value.
        blobs: The claim-check store, to fetch a value that went by claim check.
    """
    if record.topic == PARKED_KEYS:
        return _park_entry(record)
    try:
        reference = ClaimCheckReference.from_kafka(record.headers)
        # Fetched off the event loop; the record stays as stored.
        value = ((await asyncio.to_thread(resolved, record, blobs)) if reference is not None
                 else record).value or b""
    except (OSError, ValueError) as error:  # swept, another store, not the bytes named
        return ShownRecord(record, problem=str(error), claim_check=_reference_or_none(record))
    if not value:
        return ShownRecord(record, problem="empty value")
    try:
        await codec.prepare_decode(value)
        event = codec.decode(value, record.header(EVENT_TYPE) or None)
    except DecodeError as error:
        return ShownRecord(record, problem=f"{error.reason}: {error}", claim_check=reference)
    except OSError as error:  # the schema registry did not answer
        return ShownRecord(record, problem=f"schema registry: {error}", claim_check=reference)
    return ShownRecord(record, event=event, claim_check=reference)


def _reference_or_none(record: StoredRecord) -> ClaimCheckReference | None:
    try:
        return ClaimCheckReference.from_kafka(record.headers)
    except ValueError:
        return None


def _park_entry(record: StoredRecord) -> ShownRecord:
    if record.value is None:
        return ShownRecord(record)  # a tombstone: released
    try:
        return ShownRecord(record, parked=ParkEntry.model_validate_json(record.value))
    except ValidationError as error:
        return ShownRecord(record, problem=f"not a park entry: {error.error_count()} error(s)")
