"""Memory: the bridge's resident set size does not grow with the events it saw or the backlog.

The bridge runs as a real ``relayflow bridge`` process; its RSS is read from
``/proc``. Two measurements, each a ratio of two sizes in one run:

* processed: RSS after it started ``--small`` and then ``--large`` workflows
  (no worker on its task queue: a start is all it does);
* backlog: its link to Temporal cut (Toxiproxy) so nothing can finish, RSS
  with 10,000 and then 100,000 events waiting in the topic: the bridge holds
  one bounded batch, not the backlog.

    python -m bench.memory [--small 2000] [--large 10000] [--backlog 10000 100000] [--settle 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from bench.common import bench_stack, caught_up, orders, produce, record, start_at_end, table
from devtools.toxiproxy import Toxiproxy
from relayflow.config.settings import Settings
from relayflow.reference.topics import ORDERS_EVENTS

RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_bridge(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``relayflow bridge`` with these settings."""
    env = {**os.environ, **settings.model_copy(update={"log_level": "WARNING"}).as_env()}
    with log.open("ab") as out:
        return subprocess.Popen([RELAYFLOW, "bridge"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def settle_rss(pid: int, seconds: float = 3.0) -> float:
    """RSS after letting the process settle (the largest of a few samples)."""
    samples = []
    for _ in range(max(1, int(seconds / 0.5))):
        await asyncio.sleep(0.5)
        samples.append(rss_mib(pid))
    return max(samples)


def _mine(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"kafka_consumer_group": f"{name}-{uuid.uuid4().hex[:6]}",
                                       "task_queue": f"bench-{name}"})


async def processed(settings: Settings, small: int, large: int, logs: Path,
                    settle: float = 3.0) -> tuple[float, float]:
    """RSS after ``small`` and after ``large`` events went through to Temporal.

    ``settle``: seconds of RSS samples after each.
    """
    mine = _mine(settings, "memory")
    await start_at_end(mine, mine.kafka_consumer_group)
    bridge = start_bridge(mine, logs / "bridge-processed.log")
    try:
        sizes = []
        for count in (small, large - small):
            await produce(mine, ORDERS_EVENTS, orders(count))
            await caught_up(mine, mine.kafka_consumer_group)
            sizes.append(await settle_rss(bridge.pid, settle))
        return sizes[0], sizes[1]
    finally:
        bridge.kill()
        bridge.wait(10)


async def backlog(settings: Settings, sizes: list[int], logs: Path,
                  settle: float = 6.0) -> list[float]:
    """RSS with each backlog size waiting while Temporal is unreachable.

    ``settle``: seconds of RSS samples after each size was produced.
    """
    mine = _mine(settings, "backlog")
    await start_at_end(mine, mine.kafka_consumer_group)
    with Toxiproxy(settings, logs / "toxiproxy.log") as toxiproxy:
        link = toxiproxy.proxy("temporal", settings.temporal_address)
        bridge = start_bridge(mine.model_copy(update={"temporal_address": link.listen}),
                              logs / "bridge-backlog.log")
        try:
            await produce(mine, ORDERS_EVENTS, orders(1))
            # connected, consuming
            await caught_up(mine, mine.kafka_consumer_group)
            link.cut()
            found, produced = [], 0
            for size in sizes:
                await produce(mine, ORDERS_EVENTS, orders(size - produced))
                produced = size
                found.append(await settle_rss(bridge.pid, settle))
            return found
        finally:
            bridge.kill()
            bridge.wait(10)


async def main(args: argparse.Namespace) -> str:
    with bench_stack() as settings:
        logs = settings.data_dir
        small, large = await processed(settings, args.small, args.large, logs, args.settle)
        waiting = await backlog(settings, args.backlog, logs, 2 * args.settle)
    ratios = {f"processed {args.large}/{args.small}": large / small,
              f"backlog {args.backlog[-1]}/{args.backlog[0]}": waiting[-1] / waiting[0]}
    record("memory", vars(args), {"processed_mib": [small, large], "backlog_mib": waiting,
                                  "ratios": ratios})
    rows = [("after processing", args.small, small), ("after processing", args.large, large),
            *(("with a backlog, Temporal unreachable", n, mib)
              for n, mib in zip(args.backlog, waiting, strict=True))]
    return "\n".join([
        table("Bridge memory (resident set, MiB)", ["situation", "events", "RSS MiB"], rows),
        "", *(f"{name}: {value:.2f}x (goal <= 1.2x)" for name, value in ratios.items()),
    ])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--backlog", type=int, nargs=2, default=[10_000, 100_000])
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds of RSS samples after each size (twice that for a backlog)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(asyncio.run(main(parse())))
