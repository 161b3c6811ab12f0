"""The ending sweep's schedule: created, or brought up to date, by the worker at start.

The worker creates it, not ``relayflow dev up`` or an operator command: the
guarantee ("every workflow with an ``Ending`` gets a terminal event") belongs
to the application wherever it runs, and the worker is the one process that
always runs with it, knows its task queue and registers the sweep's
workflows. Creating is idempotent: a schedule that exists (another worker of
the same task queue made it) is updated to the settings, keeping its state, so
an operator's pause survives a restart. ``endings_sweep_seconds=0`` leaves the
schedule alone.
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

from activities.endings import SweepInput
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.runtime.schedules import ensure_schedule
from workflows.endings import SWEEP_ENDINGS_WORKFLOW

__all__ = ["ending_schedule", "ending_schedule_id", "ensure_ending_schedule",
           "sweep_execution_timeout"]

log = logging.getLogger(__name__)


def ending_schedule_id(task_queue: str) -> str:
    """Id of the ending sweep's schedule (and prefix of its runs' workflow ids)."""
    return f"relayflow-endings-{task_queue}"


def sweep_execution_timeout(settings: Settings) -> timedelta:
    """How long one sweep may run: minutes at most; one stuck longer gives way to the next."""
    return max(timedelta(seconds=settings.endings_sweep_seconds) * 10, timedelta(minutes=15))


def ending_schedule(settings: Settings) -> Schedule:
    """The schedule that runs ``relayflow.SweepEndings`` every ``endings_sweep_seconds``."""
    every = timedelta(seconds=settings.endings_sweep_seconds)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_ENDINGS_WORKFLOW,
            SweepInput(window_seconds=settings.endings_window_seconds),
            id=ending_schedule_id(settings.task_queue), task_queue=settings.task_queue,
            execution_timeout=sweep_execution_timeout(settings)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # Each sweep covers the whole window, so missed or overlapping runs add nothing.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=timedelta(minutes=1)),
    )


async def ensure_ending_schedule(client: Client, settings: Settings, app: Application) -> bool:
    """Create the ending sweep's schedule, or update it to ``settings`` (keeping its state).

    Args:
        client: Connected Temporal client.
        settings: The task queue and the sweep's interval and window.
        app: The application; without endings there is nothing to sweep.

    Returns:
        Whether a schedule is there for this task queue now.
    """
    if not app.endings or settings.endings_sweep_seconds == 0:
        return False
    schedule_id = ending_schedule_id(settings.task_queue)
    if await ensure_schedule(client, schedule_id, ending_schedule(settings)):
        log.info("ending sweep scheduled every %ss as %s", settings.endings_sweep_seconds,
                 schedule_id)
    return True
