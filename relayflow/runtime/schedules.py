"""The worker's schedules: created at start, or brought up to date, keeping their state."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

__all__ = ["ensure_schedule"]


async def ensure_schedule(client: Client, schedule_id: str, wanted: Schedule) -> bool:
    """Create the schedule, or update the one there (another worker made it) to ``wanted``.

    Idempotent; the schedule's state is kept, so an operator's pause survives
    a worker's restart.

    Returns:
        True when it was created now.
    """
    try:
        await client.create_schedule(schedule_id, wanted)
    except ScheduleAlreadyRunningError:
        pass
    else:
        return True

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        wanted.state = current.description.schedule.state  # an operator's pause stays
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(update)
    return False
