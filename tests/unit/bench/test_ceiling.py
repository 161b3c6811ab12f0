"""bench.ceiling's ratios: medians of the rounds, and the scale-out pair's bound on this machine."""

from __future__ import annotations

import argparse
import os

import pytest

from bench import ceiling
from bench.ceiling import Run, _scale_bound


def _run(processes: int, records: int, seconds: float, cpu: float, frontend: float,
         kafka: float, variant: str = "relayflow bridge", number: int = 1) -> Run:
    return Run(variant, "start", records, seconds, cpu, frontend,
               {"StartWorkflowExecution": records, "WorkflowsStarted": records},
               processes, kafka, round=number)


def test_the_bound_is_every_core_busy_at_the_pairs_cost_per_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    # One process: 1,000 records/s at 600 + 150 + 50 µs a record = 0.8 cores busy.
    one = [_run(1, 10_000, 10.0, 6.0, 1.5, 0.5)]
    # Two: 1,000 µs a record all told, so 2 cores make at most 2,000 records/s = 2.00x one.
    two = [_run(2, 10_000, 6.0, 7.0, 2.0, 1.0)]
    bound, said = _scale_bound(one, two)
    assert bound == pytest.approx(2.0)
    assert "kept 0.80 of 2 cores busy" in said
    assert "2,000 records/s" in said


def test_the_ratios_are_of_each_variants_medians_over_its_rounds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ceiling, "record", lambda *_args, **_kwargs: None)
    # Bridge rounds: 1,000 / 500 / 800 records/s at 500 / 900 / 600 µs; loop: 1,000 / 1,250 /
    # 1,000 at 400 / 400 / 500. Medians 800 vs 1,000 (0.80x) and 600 vs 400 µs (1.50x); the
    # bridge's slow round (a busy moment) moves neither.
    runs = [_run(1, 1000, seconds, cpu, 0.1, 0.0, variant, n) for variant, n, seconds, cpu in (
        ("relayflow bridge", 1, 1.0, 0.5), ("hand-written loop", 1, 1.0, 0.4),
        ("hand-written loop", 2, 0.8, 0.4), ("relayflow bridge", 2, 2.0, 0.9),
        ("relayflow bridge", 3, 1.25, 0.6), ("hand-written loop", 3, 1.0, 0.5))]
    args = argparse.Namespace(rounds=3, concurrency=64)
    out = ceiling.report((runs, []), args)
    assert "bridge/loop rate (start): 0.80x" in out
    assert "bridge/loop CPU per record (start): 1.50x" in out
    assert "medians of 3 round(s)" in out
