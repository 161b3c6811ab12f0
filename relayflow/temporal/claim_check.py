"""Claim check: large payloads live in a blob store, Temporal's histories hold a reference.

Built on the Temporal SDK's external storage (``temporalio.converter.ExternalStorage``,
temporalio 1.35): the data converter hands every payload from
``claim_check_threshold_bytes`` up to ``ClaimCheckDriver``, which stores it and
returns a claim; the SDK puts an ``ExternalStorageReference`` (driver name and
claim) into the history instead, and on the way back fetches the payload
before the payload codec decodes it.

Order: the SDK runs the payload codec first and external storage second, so
with payload encryption on, blobs hold ciphertext and the store never sees an
order's data; the reference holds only a digest. That is the order we want
(a bucket is a wider audience than Temporal's history), and the one the SDK
fixes.

Blobs are content-addressed: the key is the SHA-256 of the stored bytes, a
blob is written (to a temporary name, flushed, renamed) before its claim is
returned, so no history ever refers to a blob that is not durable, and a
payload stored again (a retried call) finds its blob and writes nothing.
With encryption on, a redelivered Kafka record is encrypted with a fresh
nonce, so its blob is new bytes: the second copy is an orphan the sweep removes.

Each blob also gets a reference marker per workflow (``refs/<workflow id>/<sha256>``),
written before the blob; ``sweep`` (``activities.claim_check``, with the store's
interface and the outcome values kept by reference) deletes the markers of workflows closed
longer than the retention period, and then every blob no marker names
(docs/concepts/claim-check.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1.external_storage_pb2 import ExternalStorageReference
from temporalio.converter import (
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)

from activities.claim_check import BlobStore, SweepReport, blob_name, marker_name, sweep

__all__ = ["DRIVER_NAME", "BlobStore", "ClaimCheckDriver", "ExternalStorage", "FileBlobStore",
           "SweepReport", "resolve_references", "sweep"]

DRIVER_NAME = "relayflow-claim-check"
"""The driver's name in every reference; changing it orphans the references already stored."""

_DIGEST_KEY = "sha256"


class FileBlobStore:
    """Blobs as files in one folder: the embedded default, for development and tests.

    Writes go to a temporary file that is flushed to disk and renamed, so a
    name either holds its complete bytes or does not exist, whatever the
    moment a process dies.

    Args:
        root: The folder (created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob name {name!r} leaves the store")
        return path

    def put(self, name: str, data: bytes) -> bool:  # noqa: D102
        path = self._path(name)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
        return True

    def get(self, name: str) -> bytes:  # noqa: D102
        return self._path(name).read_bytes()

    def delete(self, name: str) -> None:  # noqa: D102
        self._path(name).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:  # noqa: D102
        top = self._path(prefix)
        if not top.is_dir():
            return
        for path in top.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix(), path.stat().st_mtime


class ClaimCheckDriver(StorageDriver):
    """Stores payloads as content-addressed blobs and fetches them back by digest.

    Args:
        store: Where the blobs go.
    """

    def __init__(self, store: BlobStore) -> None:
        self.blobs = store

    def name(self) -> str:  # noqa: D102
        return DRIVER_NAME

    def type(self) -> str:  # noqa: D102
        return "relayflow.claim-check"

    async def store(self, context: StorageDriverStoreContext,  # noqa: D102
                    payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        target = context.target
        workflow_id = target.id if isinstance(target, StorageDriverWorkflowInfo) else None
        return [await asyncio.to_thread(self._put, workflow_id, payload) for payload in payloads]

    def _put(self, workflow_id: str | None, payload: Payload) -> StorageDriverClaim:
        data = payload.SerializeToString(deterministic=True)
        digest = hashlib.sha256(data).hexdigest()
        # The marker first: a blob is never without one, so the sweep cannot take a blob
        # whose reference is about to be used.
        self.blobs.put(marker_name(workflow_id, digest), b"")
        self.blobs.put(blob_name(digest), data)
        # A failpoint: a fault test kills the process between storing and using the blob.
        sys.audit("relayflow.failpoint", "claim-check.after-store")
        return StorageDriverClaim(claim_data={_DIGEST_KEY: digest})

    async def retrieve(self, context: StorageDriverRetrieveContext,  # noqa: D102, ARG002
                       claims: Sequence[StorageDriverClaim]) -> list[Payload]:
        return [await asyncio.to_thread(self.fetch, claim.claim_data[_DIGEST_KEY])
                for claim in claims]

    def fetch(self, digest: str) -> Payload:
        """The payload stored under ``digest``, checked against it.

        Raises:
            ValueError: The blob's bytes do not match their digest.
            FileNotFoundError: No blob has that digest (swept, or never stored).
        """
        data = self.blobs.get(blob_name(digest))
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"claim-check blob {digest} does not match its digest")
        return Payload.FromString(data)


_REFERENCE_TYPE = ExternalStorageReference.DESCRIPTOR.full_name.encode()


def resolve_references(driver: ClaimCheckDriver, payloads: Sequence[Payload]) -> list[Payload]:
    """Replace each claim-check reference with the stored payload (for the codec server).

    Payloads that are not references are returned as they are.
    """
    resolved = []
    for payload in payloads:
        found = payload
        if (payload.metadata.get("encoding") == b"json/protobuf"
                and payload.metadata.get("messageType") == _REFERENCE_TYPE):
            reference = json_format.Parse(payload.data, ExternalStorageReference())
            if reference.driver_name == DRIVER_NAME:
                found = driver.fetch(reference.claim_data[_DIGEST_KEY])
        resolved.append(found)
    return resolved
