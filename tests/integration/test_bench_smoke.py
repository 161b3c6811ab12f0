"""Every benchmark script runs end to end at a tiny size, so none of them can rot.

They run on the session's stack (``RELAYFLOW_BENCH_STACK=external``) instead
of starting their own. Figures are not checked: tests never assert speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import codec, fanout, latency, memory, start_throughput
from relayflow.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def bench_env(stack: Settings, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> None:
    monkeypatch.setenv("RELAYFLOW_BENCH_STACK", "external")
    mine = stack.model_copy(update={"data_dir": tmp_path,
                                    "store_path_override": tmp_path / "store.db"})
    for name, value in mine.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("bench.common.RESULTS", tmp_path / "results.jsonl")


def test_codec() -> None:
    out = codec.main(codec.parse(["--events", "50", "--rounds", "1"]))
    assert "avro decode" in out


async def test_start_throughput(bench_env: None) -> None:
    args = start_throughput.parse(["--events", "20", "--naive-events", "5",
                                   "--concurrency", "8", "--latency-ms", "2"])
    out = start_throughput.report(await start_throughput.main(args), args)
    assert "bridge/naive @2ms" in out
    assert "bridge/raw without argument @0ms" in out


async def test_latency(bench_env: None) -> None:
    out = await latency.main(latency.parse(["--seconds", "1", "--calibrate", "5"]))
    assert "produced -> outcome consumed" in out


async def test_memory(bench_env: None) -> None:
    out = await memory.main(memory.parse(["--small", "5", "--large", "10",
                                          "--backlog", "20", "40"]))
    assert "RSS MiB" in out


async def test_fanout(bench_env: None) -> None:
    out = await fanout.main(fanout.parse(["--items", "60", "--chunk", "10", "--window", "2",
                                          "--flat-items", "5"]))
    assert "largest history" in out
