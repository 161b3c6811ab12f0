"""The dev server vs the real Temporal server: start throughput and latency, side by side.

Every other figure here is measured on ``temporal server start-dev`` (SQLite,
one history shard). This runs the same start-throughput and latency
measurements (``bench.start_throughput.measure``, ``bench.latency.measure``)
against both servers in one run, on one Kafka, alternating round by round so
both see the same machine load:

* dev: ``temporal server start-dev`` (SQLite, WAL, ``synchronous=normal``);
* server: the real server, ``go.temporal.io/server`` built with Go, on a
  private PostgreSQL cluster (``synchronous_commit=off``), 4 history shards
  (``relayflow.devstack.temporal_server``; ``make temporal-server`` builds it).

Both run all the time (the idle one costs a little CPU). Each row also gives
the CPU seconds the server used (its process group: for the real server,
PostgreSQL's too) per 1,000 starts.

    python -m bench.servers [--events 1500] [--concurrency 64] [--rounds 2] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from bench import latency, start_throughput
from bench.common import bench_ports, bench_stack, group_cpu, record, table
from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack.process import recorded_pid
from relayflow.devstack.temporal import TEMPORAL
from relayflow.devstack.temporal_server import HISTORY_SHARDS, POSTGRES


@dataclass
class Row:
    """One variant of the start benchmark on one server in one round."""

    server: str
    round: int
    variant: str
    events: int
    seconds: float
    server_cpu: float

    @property
    def rate(self) -> float:
        """Workflow starts per second."""
        return self.events / self.seconds


def server_cpu(settings: Settings) -> float:
    """CPU seconds of the stack's Temporal server and, for the real one, its PostgreSQL."""
    return sum(group_cpu(recorded_pid(settings, name)) for name in (TEMPORAL, POSTGRES))


@contextlib.contextmanager
def real_server(base: Settings) -> Iterator[Settings]:
    """The real server beside the bench stack's dev server (same Kafka), stopped after."""
    port = bench_ports()[2] + 10  # next to the dev server's, clear of its UI's
    real = base.model_copy(update={
        "data_dir": base.data_dir / "real-server", "temporal_dev_server": "server",
        "temporal_port": port, "temporal_address": f"127.0.0.1:{port}"})
    real.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        devstack.start_temporal(real)
        yield real
    finally:
        devstack.stop_temporal(real)


async def starts(servers: dict[str, Settings], args: argparse.Namespace) -> list[Row]:
    """Start throughput on each server, round by round."""
    rows = []
    for number in range(1, args.rounds + 1):
        for name, settings in servers.items():
            before = server_cpu(settings)
            runs = await start_throughput.measure(settings, 0, args.events, 0, args.concurrency)
            # The server's CPU over the whole round, shared out by each variant's time.
            cpu = server_cpu(settings) - before
            total = sum(run.seconds for run in runs)
            rows += [Row(name, number, run.variant, run.events, run.seconds,
                         cpu * run.seconds / total) for run in runs]
    return rows


async def main(args: argparse.Namespace) -> str:
    with bench_stack() as dev, real_server(dev) as real:
        servers = {"dev server (SQLite, 1 shard)": dev,
                   f"real server (PostgreSQL, {HISTORY_SHARDS} shards)": real}
        rows = await starts(servers, args)
        latencies = {}
        for name, settings in servers.items():
            if args.seconds > 0:  # 0: start throughput only
                latencies[name] = await latency.measure(settings, args)
    lines = [table("Start throughput by server (workflow starts per second)",
                   ["server", "round", "variant", "events", "seconds", "starts/s",
                    "server CPU s / 1,000 starts"],
                   [(r.server, r.round, r.variant, r.events, r.seconds, r.rate,
                     1000 * r.server_cpu / r.events) for r in rows]), ""]
    best = {(r.server, r.variant): max(x.rate for x in rows
                                        if (x.server, x.variant) == (r.server, r.variant))
            for r in rows}
    dev_name, real_name = servers
    ratios = {f"real/dev, {variant} (best of {args.rounds})":
              best[real_name, variant] / best[dev_name, variant]
              for variant in ("raw client", "relayflow bridge")}
    ratios |= {f"bridge/raw on the {name.split(' (')[0]}":
               best[name, "relayflow bridge"] / best[name, "raw client"] for name in servers}
    lines += [f"{name}: {value:.2f}x" for name, value in ratios.items()]
    for name, (maximum, rate, latency_rows) in latencies.items():
        lines += ["", table(f"Latency (ms) on the {name} at {rate:.1f} events/s = "
                            f"{args.load:.0%} of its maximum {maximum:.1f} sagas/s",
                            ["path", "events", "p50", "p95", "p99"], latency_rows)]
        lines += [f"{key}: {value:.2f}" for key, value in latency.overhead(latency_rows).items()]
    record("servers", vars(args), {
        "starts": [vars(r) | {"rate": r.rate} for r in rows], "ratios": ratios,
        "latency": {name: {"max_sagas_per_s": maximum, "rate": rate,
                           "rows": [list(map(str, row)) for row in latency_rows]}
                    for name, (maximum, rate, latency_rows) in latencies.items()}})
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="latency: seconds offered (0: skip latency)")
    parser.add_argument("--load", type=float, default=0.5, help="latency: share of the maximum")
    parser.add_argument("--calibrate", type=int, default=150, help="latency: sagas in the burst")
    latency.add_warm(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(asyncio.run(main(parse())))
