"""Deleting claim-check blobs whose workflows closed longer ago than the retention."""

from __future__ import annotations

from datetime import timedelta

from relayflow.config.settings import Settings
from relayflow.operate.errors import BadInput
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.clients import blob_store
from relayflow.temporal.claim_check import SweepReport, sweep

__all__ = ["sweep_claim_check"]


async def sweep_claim_check(settings: Settings) -> SweepReport:
    """Run one sweep of the configured blob store (``relayflow.temporal.claim_check.sweep``).

    Raises:
        BadInput: The claim check is off (no blob store configured).
    """
    store = blob_store(settings)
    if store is None:
        raise BadInput("the claim check is off: set RELAYFLOW_CLAIM_CHECK_DIR or _S3_ENDPOINT")
    client = await connect_temporal(settings)
    return await sweep(client, store, timedelta(hours=settings.claim_check_retention_hours),
                       outcome_retention=timedelta(
                           hours=settings.claim_check_outcome_retention_hours))
