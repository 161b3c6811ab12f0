"""The claim check's blob store: its interface, outcome values kept by reference, the sweep.

Two kinds of blob share one store (``relayflow.temporal.claim_check`` has the
store implementations and the Temporal SDK's storage driver):

* ``blobs/<sha256>``: Temporal payloads too large for a history (serialized
  ``Payload`` messages, ciphertext when payload encryption is on), each named by
  a marker ``refs/<workflow id>/<sha256>`` (or ``refs/_unbound/<sha256>``);
  kept while a workflow that refers to one runs, and for the retention after
  it closed.
* ``outcomes/<sha256>``: outcome values too large for their Kafka topic (the
  record's value bytes as they would have been on the topic), published as a
  record whose ``claim-check-*`` headers say where the value is
  (``schemas.headers.ClaimCheckReference``); kept for the outcome retention from
  when each was first stored, whatever workflow published it, since a subscriber
  may read the record as long as the topic keeps it.

``sweep`` deletes what is due; ``BlobSweep.sweep_claim_check`` runs it as an
activity, heartbeating, on the worker's Temporal Schedule
(``workflows.claim_check``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from schemas.headers import ClaimCheckReference

__all__ = ["OUTCOMES", "UNBOUND", "BlobStore", "BlobSweep", "SweepInput", "SweepReport",
           "blob_name", "marker_name", "store_value", "stored_value", "sweep"]

log = logging.getLogger(__name__)

UNBOUND = "_unbound"
"""Marker folder of blobs stored for no workflow (an activity's own payloads): kept for
the retention period from when they were stored."""
OUTCOMES = "outcomes"
"""Folder of outcome values stored by reference (``claim-check-key`` names one of them)."""


class BlobStore(Protocol):
    """Where blobs live: a folder for development; S3-compatible storage for production."""

    def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` under ``name`` durably unless it is there; True when written."""
        ...

    def get(self, name: str) -> bytes:
        """The bytes under ``name``.

        Raises:
            FileNotFoundError: Nothing is stored under it.
        """
        ...

    def delete(self, name: str) -> None:
        """Remove ``name``; nothing happens when it is gone already."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Names under ``prefix`` with the time (epoch seconds) each was written."""
        ...


def blob_name(digest: str) -> str:
    """Name of the Temporal payload blob with SHA-256 ``digest``."""
    return f"blobs/{digest}"


def marker_name(workflow_id: str | None, digest: str) -> str:
    """Name of the marker saying ``workflow_id`` (None: no workflow) refers to blob ``digest``."""
    owner = urllib.parse.quote(workflow_id, safe="") if workflow_id else UNBOUND
    return f"refs/{owner}/{digest}"


def store_value(store: BlobStore, value: bytes, content_type: str) -> ClaimCheckReference:
    """Store a Kafka record's value under ``outcomes/<sha256>`` (durably) and say where.

    Content-addressed: a retried publication stores nothing new.

    Args:
        store: The blob store.
        value: The record value as it would have been on the topic.
        content_type: Its ``content-type`` (the event's format).
    """
    digest = hashlib.sha256(value).hexdigest()
    reference = ClaimCheckReference(key=f"{OUTCOMES}/{digest}", size=len(value), sha256=digest,
                                    content_type=content_type)
    store.put(reference.key, value)
    return reference


def stored_value(store: BlobStore, reference: ClaimCheckReference) -> bytes:
    """The value a ``claim-check-*`` reference names, checked against its size and digest.

    Raises:
        FileNotFoundError: Not in the store (swept after its retention, or another store).
        ValueError: The stored bytes are not the ones the reference names.
    """
    value = store.get(reference.key)
    if len(value) != reference.size or hashlib.sha256(value).hexdigest() != reference.sha256:
        raise ValueError(f"claim-check value {reference.key} does not match its reference")
    return value


@dataclass(frozen=True)
class SweepReport:
    """What one sweep deleted.

    Attributes:
        markers: Reference markers deleted (their workflow closed long enough ago).
        blobs: Blobs deleted (no marker named them any more).
        outcomes: Outcome values deleted (older than the outcome retention).
    """

    markers: int
    blobs: int
    outcomes: int = 0


async def _listed(store: BlobStore, prefix: str) -> list[tuple[str, float]]:
    # Off the event loop: S3 lists by HTTP, a folder by walking it.
    return await asyncio.to_thread(lambda: list(store.list(prefix)))


async def _closed_before(client: Client, workflow_id: str, cutoff: datetime) -> bool:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return True  # never started (its start failed for good) or its history is gone
    return description.close_time is not None and description.close_time < cutoff


async def sweep(client: Client, store: BlobStore, retention: timedelta, *,
                outcome_retention: timedelta | None = None, now: datetime | None = None,
                progress: Callable[[str], None] | None = None) -> SweepReport:
    """Delete the blobs of workflows closed more than ``retention`` ago, and old outcome values.

    A marker is deleted once its workflow closed before ``now - retention``, or
    when no workflow has its id and the marker is older than the retention
    (the bridge stored a blob and the start never happened); a marker of no
    workflow expires ``retention`` after it was written. Then each blob that no
    marker names and that is older than the retention is deleted: a blob is
    written after its marker, so a young blob without one is mid-store.
    Outcome values are deleted ``outcome_retention`` after they were stored.

    Idempotent, and safe to run several at once and to stop at any point: each
    step deletes only what is due, and deleting what is gone is nothing.

    Args:
        client: Tells which workflows closed when.
        store: The blob store.
        retention: How long after its workflow closed a blob is kept.
        outcome_retention: How long an outcome value is kept (default: ``retention``).
        now: The time to sweep at (tests).
        progress: Called with each name looked at (the scheduled sweep heartbeats).
    """
    now = now or datetime.now(UTC)
    cutoff = (now - retention).timestamp()
    look = progress or (lambda _: None)
    markers = 0
    live: set[str] = set()
    closed: dict[str, bool] = {}  # one describe per workflow, however many blobs it has
    for name, written in await _listed(store, "refs"):
        look(name)
        _, owner, digest = name.split("/")
        old = written < cutoff
        if owner == UNBOUND or not old:
            expired = old
        else:
            if owner not in closed:
                closed[owner] = await _closed_before(
                    client, urllib.parse.unquote(owner), datetime.fromtimestamp(cutoff, UTC))
            expired = closed[owner]
        if expired:
            await asyncio.to_thread(store.delete, name)
            markers += 1
        else:
            live.add(digest)
    blobs = 0
    for name, written in await _listed(store, "blobs"):
        look(name)
        if name.removeprefix("blobs/") not in live and written < cutoff:
            await asyncio.to_thread(store.delete, name)
            blobs += 1
    outcome_cutoff = (now - (outcome_retention or retention)).timestamp()
    outcomes = 0
    for name, written in await _listed(store, OUTCOMES):
        look(name)
        if written < outcome_cutoff:
            await asyncio.to_thread(store.delete, name)
            outcomes += 1
    log.info("claim-check sweep: %d markers, %d blobs and %d outcome values deleted",
             markers, blobs, outcomes)
    return SweepReport(markers, blobs, outcomes)


class SweepInput(BaseModel):
    """Input of the scheduled sweep (``relayflow.SweepClaimCheck`` and ``sweep_claim_check``).

    Attributes:
        retention_hours: How long a blob is kept after its workflow closed.
        outcome_retention_hours: How long an outcome value is kept after it was stored.
    """

    retention_hours: float = Field(gt=0)
    outcome_retention_hours: float = Field(gt=0)


class BlobSweep:
    """The claim-check sweep as an activity, for the worker's schedule.

    Args:
        client: The worker's Temporal client (tells which workflows closed when).
        store: The configured blob store.
    """

    def __init__(self, client: Client, store: BlobStore) -> None:
        self._client = client
        self._store = store

    @activity.defn(name="sweep_claim_check")
    async def sweep_claim_check(self, request: SweepInput) -> SweepReport:
        """One sweep of the store, heartbeating with each name it looks at."""
        return await sweep(self._client, self._store, timedelta(hours=request.retention_hours),
                           outcome_retention=timedelta(hours=request.outcome_retention_hours),
                           progress=activity.heartbeat)
