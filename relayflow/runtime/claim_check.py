"""The claim-check sweep's schedule: created, or brought up to date, by the worker at start.

Like the ending sweep's (``relayflow.runtime.endings``): the worker is the one
process that always runs where the blob store is configured, and registers the
sweep's workflow and activity. One schedule per task queue; several task
queues on one store sweep it each, which is safe (the sweep is idempotent).
``claim_check_sweep_seconds=0`` leaves the schedule alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from activities.claim_check import SweepInput
from relayflow.config.settings import Settings
from relayflow.runtime.schedules import ensure_schedule
from workflows.claim_check import SWEEP_CLAIM_CHECK_WORKFLOW

__all__ = ["claim_check_schedule", "claim_check_schedule_id", "ensure_claim_check_schedule"]

log = logging.getLogger(__name__)


def claim_check_schedule_id(task_queue: str) -> str:
    """Id of the claim-check sweep's schedule (and prefix of its runs' workflow ids)."""
    return f"relayflow-claim-check-{task_queue}"


def claim_check_schedule(settings: Settings) -> Schedule:
    """The schedule that runs ``relayflow.SweepClaimCheck`` every ``claim_check_sweep_seconds``."""
    every = timedelta(seconds=settings.claim_check_sweep_seconds)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_CLAIM_CHECK_WORKFLOW,
            SweepInput(retention_hours=settings.claim_check_retention_hours,
                       outcome_retention_hours=settings.claim_check_outcome_retention_hours),
            id=claim_check_schedule_id(settings.task_queue), task_queue=settings.task_queue,
            # The activity's attempts fit in an hour; one stuck longer gives way to the next.
            execution_timeout=max(every * 2, timedelta(hours=2))),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # Each sweep looks at the whole store, so missed or overlapping runs add nothing.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=timedelta(minutes=1)),
    )


async def ensure_claim_check_schedule(client: Client, settings: Settings) -> bool:
    """Create the claim-check sweep's schedule, or update it to ``settings`` (keeping its state).

    Returns:
        Whether a schedule is there for this task queue now (a blob store is
        configured and the interval is not 0).
    """
    if not settings.claim_check_on or settings.claim_check_sweep_seconds == 0:
        return False
    schedule_id = claim_check_schedule_id(settings.task_queue)
    if await ensure_schedule(client, schedule_id, claim_check_schedule(settings)):
        log.info("claim-check sweep scheduled every %ss as %s",
                 settings.claim_check_sweep_seconds, schedule_id)
    return True
