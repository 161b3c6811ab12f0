"""The start-throughput benchmark's method: alternating order, medians, the naive bound."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pytest

from bench import start_throughput
from bench.common import alternating
from bench.start_throughput import BARE, BRIDGE, NAIVE, RAW, Run


def test_rounds_alternate_their_order_so_each_variant_holds_each_place_as_often() -> None:
    orders = list(alternating("AB", 4))
    assert orders == [(1, ["A", "B"]), (2, ["B", "A"]), (3, ["A", "B"]), (4, ["B", "A"])]
    # A server slowing steadily burst by burst: the medians come out alike.
    for variants in ("AB", "ABCD"):
        places: dict[str, list[int]] = {v: [] for v in variants}
        for at, (_, order) in enumerate(alternating(variants, 4)):
            for offset, variant in enumerate(order):
                places[variant].append(at * len(variants) + offset)
        medians = {statistics.median(1000 - 10 * p for p in ps) for ps in places.values()}
        assert len(medians) == 1, places


def _runs(rates: dict[tuple[str, int], list[float]]) -> list[Run]:
    return [Run(variant, latency, 100, 100 / rate, number)
            for (variant, latency), each in rates.items()
            for number, rate in enumerate(each, start=1)]


@pytest.fixture
def args(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> argparse.Namespace:
    monkeypatch.setattr("bench.common.RESULTS", tmp_path / "results.jsonl")
    return start_throughput.parse(["--rounds", "2"])


@pytest.mark.parametrize(("raw_rate", "bounded"), [(120.0, True), (300.0, False)])
def test_ratios_are_of_the_medians_and_bridge_naive_shows_its_bound(
        args: argparse.Namespace, raw_rate: float, bounded: bool) -> None:
    rates = {(BARE, 0): [200.0, 180.0], (RAW, 0): [190.0, 170.0], (BRIDGE, 0): [175.0, 185.0],
             (BARE, 10): [150.0, 130.0], (RAW, 10): [raw_rate, raw_rate],
             (BRIDGE, 10): [110.0, 100.0], (NAIVE, 10): [30.0, 30.0]}
    out = start_throughput.report(_runs(rates), args)
    # Every round's row (two latencies, two rounds), then the medians' (two latencies).
    assert len([line for line in out.splitlines() if line.startswith("| raw client ")]) == 6
    assert "bridge/raw @0ms: 1.00x" in out  # 180 / 180
    bound = raw_rate / 30
    assert f"raw/naive @10ms: {bound:.2f}x" in out
    note = f"bridge/naive @10ms: 3.50x (its bound, raw/naive: {bound:.2f}x"
    assert note in out
    assert ("bounded by the server, not the bridge" in out) is bounded
