"""Claim-check settings: where large payloads are stored instead of Temporal's histories."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from relayflow.config.base import EnvSettings
from relayflow.config.bridge import TEMPORAL_PAYLOAD_LIMIT

__all__ = ["ClaimCheckSettings"]


class ClaimCheckSettings(EnvSettings):
    """Claim check: large payloads go to a blob store, histories carry a reference.

    Attributes:
        claim_check_dir: Folder of the filesystem blob store (the embedded store,
            for development); unset turns the claim check off, and payloads over
            Temporal's limit are dead-lettered as ``oversize``. With it set,
            ``max_payload_bytes`` may go up to what the broker accepts. Every
            bridge, worker and codec server must see the same folder.
        claim_check_threshold_bytes: Payloads (encoded, encrypted when
            encryption is on) of at least this size are stored as blobs.
            Below Temporal's limit, so nothing stored inline can be refused.
        claim_check_retention_hours: How long a blob is kept after its workflow
            closed (the sweep deletes it then); also the age at which a blob no
            workflow refers to is deleted.
    """

    claim_check_dir: Path | None = None
    claim_check_threshold_bytes: int = Field(default=256 * 1024, gt=0,
                                             lt=TEMPORAL_PAYLOAD_LIMIT)
    claim_check_retention_hours: float = Field(default=7 * 24, gt=0)
