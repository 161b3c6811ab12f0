"""bench.ceiling's bound on the scale-out pair: what every core of the machine allows."""

from __future__ import annotations

import os

import pytest

from bench.ceiling import Run, _scale_bound


def _run(processes: int, records: int, seconds: float, cpu: float, frontend: float,
         kafka: float) -> Run:
    return Run("relayflow bridge", "start", records, seconds, cpu, frontend,
               {"StartWorkflowExecution": records, "WorkflowsStarted": records},
               processes, kafka)


def test_the_bound_is_every_core_busy_at_the_pairs_cost_per_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    # One process: 1,000 records/s at 600 + 150 + 50 µs a record = 0.8 cores busy.
    one = _run(1, 10_000, 10.0, 6.0, 1.5, 0.5)
    # Two: 1,000 µs a record all told, so 2 cores make at most 2,000 records/s = 2.00x one.
    two = _run(2, 10_000, 6.0, 7.0, 2.0, 1.0)
    said = _scale_bound(one, two)
    assert "bound here: 2.00x" in said
    assert "kept 0.80 of 2 cores busy" in said
    assert "2,000 records/s" in said
