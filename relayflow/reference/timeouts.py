"""The reference workflows' activity timeouts, fixed for the worker process as it is built.

``reference_activities`` (the worker's activity factory, which reads
``ReferenceSettings``) sets them once, before the worker runs; the workflows
read them each time they schedule an activity. Temporal's sandbox imports a
workflow's module again for each run, so the workflows import this module
through ``workflow.unsafe.imports_passed_through()``: a run sees the process's
values, not a fresh copy's defaults (like ``workflows.versioning``).

Why a value that differs between workers is safe: an activity's timeouts are
options of its ``ScheduleActivityTask`` command, which Temporal's determinism
check does not compare (only the command's kind, activity id and type). A run
replayed on a worker with other settings matches its history; only the
activities it schedules from then on get that worker's timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["ActivityTimeouts", "activity_timeouts", "use_activity_timeouts"]


@dataclass(frozen=True, slots=True)
class ActivityTimeouts:
    """How long Temporal waits for a reference activity before retrying it (on any worker).

    Attributes:
        order_step: Start-to-close timeout of an ``OrderSaga`` step and of its
            compensation: a step whose worker died is retried after this long.
        chunk_heartbeat: Heartbeat timeout of a batch chunk's ``process_items``:
            an attempt that has not heartbeated for this long (its worker died)
            is retried from its last heartbeat.
    """

    order_step: timedelta = timedelta(seconds=10)
    chunk_heartbeat: timedelta = timedelta(seconds=10)


_current = {"timeouts": ActivityTimeouts()}


def activity_timeouts() -> ActivityTimeouts:
    """The timeouts this process's reference workflows schedule their activities with."""
    return _current["timeouts"]


def use_activity_timeouts(timeouts: ActivityTimeouts) -> None:
    """Fix the timeouts of this process's reference workflows (the worker, as it is built).

    Args:
        timeouts: From ``ReferenceSettings``.
    """
    _current["timeouts"] = timeouts
