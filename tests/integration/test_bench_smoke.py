"""Every benchmark script runs end to end at a tiny size, so none of them can rot.

They run on the session's stack (``RELAYFLOW_BENCH_STACK=external``) instead
of starting their own. Speed is never asserted (tests never assert speed);
what is checked is that each script measured something: its table has a row
for every measure with figures that parse as positive numbers, its ratio
lines are there and positive, and they are the ratios it recorded in its
results line for this run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from bench import (
    ceiling,
    codec,
    entities,
    fanout,
    latency,
    memory,
    observability,
    secured,
    start_throughput,
)
from devtools.fakefrontend import FakeFrontend
from devtools.secured_kafka import SecuredKafka
from relayflow.config.settings import Settings
from relayflow.reference.settings import ReferenceSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Row = dict[str, str]
# "name: 1.23x" or "name: -4.56" (latency overheads), optionally followed by a note.
_FIGURE = re.compile(r"^(?P<name>[^|#:][^:]*): (?P<value>-?[\d,]*\.?\d+)x?(?: .*)?$")


def tables(out: str) -> dict[str, list[Row]]:
    """Each ``### title`` table of a report: its rows as column name → cell."""
    found: dict[str, list[Row]] = {}
    lines = out.splitlines()
    for at, line in enumerate(lines):
        if not line.startswith("### "):
            continue
        cells = []
        for row in lines[at + 2:]:  # the title, a blank line, then the table
            if not row.startswith("|"):
                break
            cells.append([cell.strip() for cell in row.strip().strip("|").split("|")])
        header, _rule, *body = cells
        found[line.removeprefix("### ")] = [dict(zip(header, row, strict=True)) for row in body]
    return found


def number(cell: str) -> float:
    """A table cell or figure as a number (the tables group thousands with commas)."""
    return float(cell.replace(",", ""))


def positive(cell: str) -> float:
    value = number(cell)
    assert value > 0, f"{cell!r} is not a positive figure"
    return value


def figures(out: str) -> dict[str, float]:
    """The ``name: value`` lines under the tables (ratios and overheads)."""
    return {m["name"]: number(m["value"])
            for m in map(_FIGURE.match, out.splitlines()) if m is not None}


def only_table(out: str, title_start: str) -> list[Row]:
    found = tables(out)
    assert len(found) == 1, out
    [(title, rows)] = found.items()
    assert title.startswith(title_start), out
    return rows


def recorded(results: Path, bench: str) -> dict[str, Any]:
    """The results line the benchmark appended for this run."""
    [line] = [json.loads(text) for text in results.read_text().splitlines()]
    assert line["bench"] == bench
    return line["results"]  # type: ignore[no-any-return]


def assert_printed(printed: dict[str, float], measured: dict[str, float]) -> None:
    """The printed figures are the measured ones (to the two decimals printed)."""
    assert set(printed) == set(measured), (printed, measured)
    for name, value in measured.items():
        assert printed[name] == pytest.approx(value, abs=0.0051), name


@pytest.fixture
def results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Where the benchmarks append their results line (not the repository's file)."""
    path = tmp_path / "results.jsonl"
    monkeypatch.setattr("bench.common.RESULTS", path)
    return path


@pytest.fixture
def bench_env(stack: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              results: Path) -> Path:
    monkeypatch.setenv("RELAYFLOW_BENCH_STACK", "external")
    mine = stack.model_copy(update={"data_dir": tmp_path})
    for name, value in {**mine.as_env(), **ReferenceSettings.of(mine).as_env()}.items():
        monkeypatch.setenv(name, value)
    return results


@pytest.fixture
def secured_broker(secured: SecuredKafka) -> SecuredKafka:
    """The session's secured broker: conftest's ``secured`` (here that is the bench's name)."""
    return secured


def test_codec(results: Path) -> None:
    out = codec.main(codec.parse(["--events", "50", "--rounds", "1"]))
    formats, events = tables(out).values()
    assert [r["format"] for r in formats] == ["avro", "json-schema", "protobuf", "json-plain"]
    assert {r["event (format)"].split(" (")[1] for r in events} == {
        "avro)", "json)", "protobuf)"}
    for row in [*formats, *events]:
        positive(row["encode/s"])
        positive(row["decode/s"])
        positive(row["bytes/event"])
    printed = figures(out)
    for ratio in printed.values():
        assert ratio > 0
    # Sizes, not speeds: Avro and Protobuf carry no field names, JSON does.
    assert printed["size json-schema/avro"] > 2, out
    assert_printed(printed, recorded(results, "codec")["ratios"])


async def test_start_throughput(bench_env: Path) -> None:
    # One round (the alternating order of more is tests/unit/bench's): the suite's time counts.
    args = start_throughput.parse(["--events", "20", "--naive-events", "5", "--concurrency", "8",
                                   "--latency-ms", "2", "--rounds", "1"])
    out = start_throughput.report(await start_throughput.main(args), args)
    (title, rows), (medians_title, medians) = tables(out).items()
    assert title.startswith("Start throughput, round by round"), out
    assert medians_title.startswith("Start throughput (median"), out
    variants = ["raw client, no argument", "raw client", "relayflow bridge"]
    measured = [*((v, "0") for v in variants), *((v, "2") for v in variants),
                ("naive FastStream", "2")]
    assert [(r["variant"], r["latency each way (ms)"], r["round"]) for r in rows] == [
        (*m, "1") for m in measured]
    for row in rows:
        events = positive(row["events"])
        assert events == (5 if row["variant"] == "naive FastStream" else 20)
        seconds, rate = positive(row["seconds"]), positive(row["starts/s"])
        assert rate == pytest.approx(events / seconds, rel=0.01), row  # one measurement
    assert [(r["variant"], r["latency each way (ms)"], r["rounds"]) for r in medians] == [
        (*m, "1") for m in measured]
    for row, once in zip(medians, rows, strict=True):  # the median of one round is that round
        assert row["median starts/s"] == row["min"] == row["max"] == once["starts/s"], row
    printed = figures(out)
    assert set(printed) == {"bridge/raw @0ms", "bridge/raw without argument @0ms",
                            "bridge/raw @2ms", "bridge/raw without argument @2ms",
                            "bridge/naive @2ms", "raw/naive @2ms"}, out
    for ratio in printed.values():
        assert ratio > 0
    # bridge/naive's bound, raw/naive, is printed beside it.
    assert f"(its bound, raw/naive: {printed['raw/naive @2ms']:.2f}x" in out, out
    assert_printed(printed, recorded(bench_env, "start_throughput")["ratios"])


async def test_latency(bench_env: Path) -> None:
    # At least 6 events offered (3 a saga path), not 20: on a loaded machine the measured
    # maximum is low, and offering 20 at half of it took most of the test's time.
    out = await latency.main(latency.parse(["--seconds", "1", "--calibrate", "5", "--warm", "1",
                                            "--min-events", "6"]))
    rows = only_table(out, "Latency (ms)")
    assert [r["path"] for r in rows] == ["produced -> workflow running (bridge)",
                                         "produced -> outcome consumed (bridge)",
                                         "client start -> outcome consumed (no bridge)"]
    for row in rows:
        positive(row["events"])
        p50, p95, p99 = (positive(row[p]) for p in ("p50", "p95", "p99"))
        assert p50 <= p95 <= p99, row
    printed = figures(out)
    assert set(printed) == {"bridge overhead p50 (ms)", "bridge/direct p50"}, out
    assert printed["bridge/direct p50"] > 0  # the overhead itself may be either sign
    measured = recorded(bench_env, "latency")
    assert measured["max_sagas_per_s"] > 0
    assert_printed(printed, measured["overhead"])


async def test_memory(bench_env: Path) -> None:
    # One RSS sample (0.5 s) after each size, the backlog's too (it samples for twice --settle).
    out = await memory.main(memory.parse(["--small", "5", "--large", "10",
                                          "--backlog", "20", "40", "--settle", "0.25"]))
    rows = only_table(out, "Bridge memory")
    backlog = "with a backlog, Temporal unreachable"
    assert [(r["situation"], r["events"]) for r in rows] == [
        ("after processing", "5"), ("after processing", "10"), (backlog, "20"), (backlog, "40")]
    for row in rows:
        positive(row["RSS MiB"])
    printed = figures(out)
    assert set(printed) == {"processed 10/5", "backlog 40/20"}, out
    for ratio in printed.values():
        assert ratio > 0
    assert_printed(printed, recorded(bench_env, "memory")["ratios"])


async def test_fanout(bench_env: Path) -> None:
    out = await fanout.main(fanout.parse(["--items", "60", "--chunk", "10", "--window", "2",
                                          "--flat-items", "5"]))
    rows = only_table(out, "Fan-out")
    assert [(r["shape"], r["items"]) for r in rows] == [
        ("fan-out (BatchWorkflow)", "60"), ("flat loop (one workflow)", "5"),
        ("flat loop, projected to 60", "60")]
    for row in rows[:2]:  # measured; the projection has no time of its own
        for column in ("seconds", "items/s", "largest history", "workflow runs"):
            positive(row[column])
    positive(rows[2]["largest history"])
    printed = figures(out)
    assert set(printed) == {"items/s fan-out/flat",
                            "largest history fan-out/flat (projected to the batch)"}, out
    for ratio in printed.values():
        assert ratio > 0
    measured = recorded(bench_env, "fanout")
    assert measured["fan_out"]["succeeded"] + measured["fan_out"]["failed"] == 60
    assert "largest fan-out history" in out
    assert_printed(printed, measured["ratios"])


async def test_secured(bench_env: Path, secured_broker: SecuredKafka) -> None:
    # The session's secured broker (other tests' too), not one of the benchmark's own.
    args = secured.parse(["--events", "20", "--rounds", "1", "--payloads", "20",
                          "--concurrency", "8"])
    out = secured.report(await secured.main(args, secured_broker), args)
    rates, codec_cost = tables(out).values()
    assert [(r["variant"], r["rounds"]) for r in rates] == [
        ("plaintext", "1"), ("SASL_SSL + encryption", "1")]
    for row in rates:
        for column in ("median starts/s", "min", "max"):
            positive(row[column])
        assert [number(rate) for rate in row["round by round"].split()] == [
            pytest.approx(number(row["median starts/s"]), abs=0.051)], row
    [cost] = codec_cost
    for column in ("encrypt (us)", "decrypt (us)", "bytes added"):
        positive(cost[column])
    printed = figures(out)
    assert set(printed) == {"secured/plaintext"}, out
    assert printed["secured/plaintext"] == pytest.approx(recorded(bench_env, "secured")["ratio"],
                                                         abs=0.0051)


async def test_observability(bench_env: Path) -> None:
    events = 20
    args = observability.parse(["--events", str(events), "--rounds", "1", "--concurrency", "8",
                                "--records", "200"])
    out = observability.report(await observability.main(args), args)
    rates, per_record = tables(out).values()
    assert [(r["variant"], r["rounds"]) for r in rates] == [
        ("off", "1"), ("metrics", "1"), ("metrics + tracing", "1")]
    for row in rates:
        for column in ("median starts/s", "min", "max"):
            positive(row[column])
    scrapes = {r["variant"]: number(r["scrapes"]) for r in rates}
    spans = {r["variant"]: number(r["spans exported"]) for r in rates}
    assert scrapes["off"] == 0
    assert scrapes["metrics"] >= 1
    assert scrapes["metrics + tracing"] >= 1
    assert spans["off"] == spans["metrics"] == 0
    # The receiver got a consume span and a StartWorkflow span per record (and the warm-up's).
    assert spans["metrics + tracing"] >= 2 * (events + 1)
    assert [r["loop"] for r in per_record] == [
        "bare loop", "scope, tracing off", "scope, tracing on", "a start's metrics, on",
        "a start's metrics, off"]
    for row in per_record:
        positive(row["us per record"])
    printed = figures(out)
    assert set(printed) == {"metrics/off", "metrics + tracing/off"}, out
    assert_printed(printed, recorded(bench_env, "observability")["ratios"])


async def test_the_stand_in_frontend_answers_a_real_client_and_counts(tmp_path: Path) -> None:
    # bench.ceiling's Temporal: built from bench/fakefrontend (Go) into the cache, once.
    with FakeFrontend(Settings(), tmp_path / "fakefrontend.log") as frontend:
        client = await Client.connect(frontend.address)
        handle = await client.start_workflow("BenchNoop", {"order": 1}, id="one",
                                             task_queue="q")
        assert handle.result_run_id
        await client.start_workflow("BenchNoop", 2, id="two", task_queue="q",
                                    start_signal="go", start_signal_args=[2])
        assert await handle.execute_update("u", 3) is None  # completed at once, null result
        counts = frontend.counts()
        assert counts.pop("GetSystemInfo") >= 1  # at connect
        assert counts == {"StartWorkflowExecution": 1, "SignalWithStartWorkflowExecution": 1,
                          "UpdateWorkflowExecution": 1, "WorkflowsStarted": 2}
        assert frontend.counts(reset=True)["WorkflowsStarted"] == 2
        assert frontend.counts() == {"WorkflowsStarted": 0}


@pytest.mark.timeout(540)  # 17 consuming processes, each importing the bridge
async def test_ceiling(bench_env: Path) -> None:
    # Three of the five routes (signal and update take the same paths as
    # signal-with-start and update-with-start, minus the start): the suite's time counts.
    actions = ("start", "signal-with-start", "update-with-start")
    args = ceiling.parse(["--events", "300", "--naive-events", "20", "--warmup", "5",
                          "--concurrency", "4", "--scale-events", "300", "--rounds", "1",
                          "--action", *actions])
    out = ceiling.report(await ceiling.main(args), args)
    found = tables(out)
    assert len(found) == 2, out
    (title, rows), (scale_title, scaled) = found.items()
    assert title.startswith("The bridge's ceiling"), out
    assert [(r["action"], r["variant"]) for r in rows] == [
        (action, variant) for action in actions
        for variant in ("relayflow bridge", "hand-written loop", "naive FastStream")]
    assert {r["round"] for r in rows} == {"1"}, out
    for row in rows:
        records, seconds = positive(row["records"]), positive(row["seconds"])
        assert records <= 305, row  # the naive one may overshoot its 20 by a poll's worth
        # Seconds are printed to the millisecond: in a tiny run that rounding alone moves
        # the quotient by more than 1%.
        assert positive(row["records/s"]) == pytest.approx(
            records / seconds, rel=0.01 + 0.0005 / seconds), row
        positive(row["CPU µs/record"])
        assert number(row["frontend CPU µs/record"]) >= 0, row  # 10 ms ticks: 0 in a tiny run
        assert 1 <= number(row["calls/record"]) < 1.1, row  # one call a record, and the connect
    # One bridge process, then two in one group, each timed on fresh records.
    assert scale_title.startswith("Scaling out: bridge processes in one consumer group"), out
    assert [r["processes"] for r in scaled] == ["1", "2"], out
    for row in scaled:
        records, seconds = positive(row["records"]), positive(row["seconds"])
        assert records <= 305, row
        assert positive(row["records/s"]) == pytest.approx(
            records / seconds, rel=0.01 + 0.0005 / seconds), row
        positive(row["CPU µs/record"])
        assert row["Kafka CPU µs/record"] == "-", row  # the session's broker is not the bench's
    printed = figures(out)
    assert set(printed) == {f"bridge/{other} ({action})" for action in actions
                            for other in ("loop rate", "loop CPU per record", "naive rate")
                            } | {"2 bridges/1 bridge rate (start)",
                                 "2 bridges/1 bridge bound here (start)"}, out
    for ratio in printed.values():
        assert ratio > 0
    measured = recorded(bench_env, "ceiling")
    assert_printed(printed, measured["ratios"])
    # update-with-start is one multi-operation call; every request got its reply on Kafka:
    # the bridge and the loop each answered each of the 305 records once before committing
    # it, the naive handler some (it is stopped once the frontend counted its 25 calls).
    assert [r["calls"].get("ExecuteMultiOperation", 0) > 0 for r in measured["runs"]] == [
        r["action"] == "update-with-start" for r in measured["runs"]]
    replies = {(r["action"], r["variant"]): r["replies"] for r in measured["runs"]}
    for (action, variant), count in replies.items():
        if not action.startswith("update"):
            assert count is None
        elif variant == "naive FastStream":
            assert 0 < count <= 305, (action, variant)
        else:
            assert count == 305, (action, variant)


async def test_entities(bench_env: Path) -> None:
    out = await entities.main(events=200, keys=4, app_name="tests.helpers.tallies.app:APP")
    rows = only_table(out, "Entity workflows")
    assert [(r["run"], r["entities"]) for r in rows] == [("one entity (hot key)", "1"),
                                                        ("4 entities", "4")]
    for row in rows:
        assert positive(row["events/s"]) == pytest.approx(
            positive(row["events"]) / positive(row["seconds"]), rel=0.01)
    printed = figures(out)
    assert set(printed) == {"one entity / many entities"}, out
    assert_printed(printed, recorded(bench_env, "entities")["ratios"])
