"""The claim-check sweep's workflow, run by the worker's Temporal Schedule.

``relayflow.SweepClaimCheck`` runs one ``sweep_claim_check`` activity
(``activities.claim_check``): it deletes the blobs of workflows closed longer
ago than the retention and outcome values older than theirs, heartbeating as
it goes. The sweep is idempotent, so a retried attempt or an overlapping run
deletes nothing twice and nothing early; the schedule (``relayflow.runtime.claim_check``)
skips a run while one is in progress.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from activities.claim_check import BlobSweep, SweepInput, SweepReport
    from workflows.versioning import versioning_behavior

__all__ = ["SWEEP_CLAIM_CHECK_WORKFLOW", "SweepClaimCheck"]

SWEEP_CLAIM_CHECK_WORKFLOW = "relayflow.SweepClaimCheck"
"""Type name of the sweep workflow the claim-check schedule starts."""

_SWEEP_TIMEOUT = timedelta(minutes=30)
"""One sweep lists and deletes every marker and blob: a large store takes minutes."""
_SWEEP_HEARTBEAT = timedelta(seconds=60)
"""It heartbeats with each name it looks at: a minute of silence is a stuck store or worker."""
# The sweep runs again on schedule: a few attempts, then the next run takes over.
_SWEEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                           maximum_interval=timedelta(seconds=30), maximum_attempts=3)


# A short run: pinned on a versioned worker, it ends on the build it started on.
@workflow.defn(name=SWEEP_CLAIM_CHECK_WORKFLOW,
               versioning_behavior=versioning_behavior(VersioningBehavior.PINNED))
class SweepClaimCheck:
    """One sweep of the claim-check store."""

    @workflow.run
    async def run(self, request: SweepInput) -> SweepReport:
        """Run the sweep activity once (retried a few times).

        Args:
            request: The retention periods.

        Returns:
            What it deleted.
        """
        return await workflow.execute_activity_method(
            BlobSweep.sweep_claim_check, request, start_to_close_timeout=_SWEEP_TIMEOUT,
            heartbeat_timeout=_SWEEP_HEARTBEAT, retry_policy=_SWEEP_RETRY)
