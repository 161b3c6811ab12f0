"""Claim-check settings: where large payloads are stored instead of Temporal's histories."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from relayflow.config.base import EnvSettings
from relayflow.config.bridge import TEMPORAL_PAYLOAD_LIMIT

__all__ = ["ClaimCheckSettings"]


class ClaimCheckSettings(EnvSettings):
    """Claim check: large payloads go to a blob store, histories carry a reference.

    Attributes:
        claim_check_dir: Folder of the filesystem blob store (the embedded store,
            for development). With neither it nor ``claim_check_s3_endpoint``
            the claim check is off, and payloads over Temporal's limit are
            dead-lettered as ``oversize``; with either, ``max_payload_bytes``
            may go up to what the broker accepts. Every bridge, worker and codec
            server must see the same store.
        claim_check_s3_endpoint: ``http(s)://host:port`` of S3-compatible object
            storage (the production store); takes precedence over ``claim_check_dir``.
        claim_check_s3_bucket: The bucket of the blobs (must exist).
        claim_check_s3_prefix: Key prefix of every blob in the bucket.
        claim_check_s3_region: Signing region.
        claim_check_s3_access_key: Access key id.
        claim_check_s3_secret_key: Secret access key. Never logged.
        claim_check_threshold_bytes: Payloads (encoded, encrypted when
            encryption is on) of at least this size are stored as blobs.
            Below Temporal's limit, so nothing stored inline can be refused.
        claim_check_retention_hours: How long a blob is kept after its workflow
            closed (the sweep deletes it then); also the age at which a blob no
            workflow refers to is deleted.
        claim_check_outcome_bytes: Outcome values of at least this many bytes
            are published by claim check (stored, the record carrying the
            ``claim-check-*`` headers) without trying the topic first. Unset:
            only values the producer or the topic refuses as too large.
        claim_check_outcome_retention_hours: How long an outcome value stored by
            claim check is kept after it was stored: at least the outcome
            topics' ``retention.ms`` (default 7 days, Kafka's default), so every
            record a subscriber can still read resolves.
        claim_check_sweep_seconds: How often the worker's Temporal Schedule runs
            the sweep (``relayflow.SweepClaimCheck``) when a blob store is
            configured; 0 leaves the schedule alone (run ``relayflow claim-check
            sweep`` from cron instead).
    """

    claim_check_dir: Path | None = None
    claim_check_s3_endpoint: str | None = None
    claim_check_s3_bucket: str = "relayflow"
    claim_check_s3_prefix: str = "claim-check/"
    claim_check_s3_region: str = "us-east-1"
    claim_check_s3_access_key: str = ""
    claim_check_s3_secret_key: SecretStr = SecretStr("")
    claim_check_threshold_bytes: int = Field(default=256 * 1024, gt=0,
                                             lt=TEMPORAL_PAYLOAD_LIMIT)
    claim_check_retention_hours: float = Field(default=7 * 24, gt=0)
    claim_check_outcome_bytes: int | None = Field(default=None, gt=0)
    claim_check_outcome_retention_hours: float = Field(default=7 * 24, gt=0)
    claim_check_sweep_seconds: int = Field(default=3600, ge=0)

    @property
    def claim_check_on(self) -> bool:
        """True when a blob store is configured."""
        return self.claim_check_dir is not None or self.claim_check_s3_endpoint is not None
