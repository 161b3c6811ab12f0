"""The demo's batch watch: the bar follows BatchProgress, success needs the exact counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from relayflow.demo import BatchWatch
from schemas import BatchCompleted, BatchProgress


def _progress(watch: BatchWatch, succeeded: int, failed: int, *, final: bool = False,
              batch_id: str | None = None) -> BatchProgress:
    kind = BatchCompleted if final else BatchProgress
    return kind(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                correlation_id="c", causation_id="c",
                batch_id=batch_id or watch.request.batch_id, total=watch.request.total,
                succeeded=succeeded, failed=failed, chunks_done=1, chunks_total=4)


def _completed(watch: BatchWatch) -> float:
    [task] = watch.progress.tasks
    return task.completed


def test_progress_moves_the_bar_and_only_the_exact_counts_complete_the_batch() -> None:
    watch = BatchWatch("b-1", total=100, fail_every=10)
    assert watch.expected_failed == 10
    watch.observe(_progress(watch, 45, 5))
    assert _completed(watch) == 50
    assert not watch.done
    watch.observe(_progress(watch, 1, 0, batch_id="someone-else"))  # another run's batch
    assert _completed(watch) == 50
    watch.observe(_progress(watch, 91, 9, final=True))  # one failure short
    assert not watch.done
    watch.observe(_progress(watch, 90, 10, final=True))
    assert watch.done
    assert _completed(watch) == 100
