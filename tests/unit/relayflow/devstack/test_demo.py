"""The demo: the reference's batch watch (exact counts), where to look, an app without a demo,
an application run beside (the carts: their settings, shared topics, their demo's stories)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from examples.carts.app import APP as CARTS_APP
from examples.carts.demo import ABANDON_AFTER_SECONDS, said, stories
from examples.carts.events import CartAbandoned, CheckoutRejected, ItemAdded
from examples.carts.topics import CARTS_EVENTS
from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.devstack.demo import Demo, beside, topics_of, where_to_look
from relayflow.reference.app import APP
from relayflow.reference.demo import BatchWatch
from relayflow.reference.events import BatchCompleted, BatchProgress


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


def test_the_demo_says_where_metrics_health_traces_and_the_ui_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    lines = "\n".join(where_to_look(Settings(tracing=True, temporal_ui_port=8233), 9400))
    assert "metrics: http://127.0.0.1:9400/metrics" in lines
    assert "http://127.0.0.1:9400/health/live" in lines
    assert "http://127.0.0.1:9400/health/ready" in lines
    assert "Temporal SDK metrics: http://127.0.0.1:9402/metrics" in lines
    assert "traces:  exported (otlp) to http://collector:4317" in lines
    assert "Temporal UI: http://127.0.0.1:8233" in lines
    quiet = where_to_look(Settings(temporal_metrics_port=-1), None)
    assert not any("metrics" in line or "health" in line for line in quiet)
    assert any(line.startswith("traces:  off") for line in quiet)


def test_the_reference_application_supplies_the_demo() -> None:
    assert isinstance(APP.extension(Demo), Demo)


def test_an_application_without_a_demo_says_so_in_one_line_and_starts_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RELAYFLOW_APP", "examples.tickets.app:APP")
    monkeypatch.setenv("RELAYFLOW_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["demo", "--no-console"])
    assert result.exit_code == 1
    assert result.output == "relayflow: application 'tickets' has no demo\n"
    assert list(tmp_path.iterdir()) == []  # no stack was started


def test_an_application_beside_gets_its_own_task_queue_and_group_and_no_ports() -> None:
    settings = Settings(task_queue="relayflow", kafka_consumer_group="relayflow-bridge")
    carts = beside(settings, "examples.carts.app:APP", "carts")
    assert (carts.app, carts.task_queue, carts.kafka_consumer_group) == (
        "examples.carts.app:APP", "relayflow-carts", "relayflow-bridge-carts")
    assert (carts.bridge_http_port, carts.worker_http_port, carts.temporal_metrics_port) == (
        -1, -1, -1)
    assert (carts.kafka_bootstrap_servers, carts.temporal_address) == (
        settings.kafka_bootstrap_servers, settings.temporal_address)


def test_topics_two_applications_share_are_created_once() -> None:
    topics = topics_of(APP.all_topics(), CARTS_APP.all_topics())
    names = [t.name for t in topics]
    assert len(names) == len(set(names))
    assert {"orders.events", "carts.events", "carts.replies"} <= set(names)
    [orders] = [t for t in topics if t.name == "orders.events"]
    assert orders.inbound  # the reference's declaration (its input), not the carts' (an output)


def test_the_carts_demo_tells_three_stories_its_routes_take() -> None:
    assert isinstance(CARTS_APP.extension(Demo), Demo)
    table = CARTS_APP.route_table()
    told = stories("r1")
    assert [s.expected for s in told] == [
        "CartCheckedOut → OrderCompleted", "CartAbandoned", "CheckoutRejected:EMPTY"]
    for story in told:
        assert {event.key for event in story.sends} == {story.cart_id}
        assert all(table.lookup(CARTS_EVENTS, e.avro_name) is not None for e in story.sends)
    [left] = [s for s in told if s.answer is CartAbandoned]
    assert {e.abandon_after_seconds for e in left.sends if isinstance(e, ItemAdded)} == {
        ABANDON_AFTER_SECONDS}
    assert ABANDON_AFTER_SECONDS < 10  # seen within the demo's run


def test_a_cart_story_is_done_only_with_every_answer_in_order() -> None:
    story = stories("r2")[0]
    story.observed.append("CartCheckedOut")
    assert not story.done  # the order's end is still missing
    story.observed.append("OrderFailed")
    assert not story.done
    story.observed[-1] = "OrderCompleted"
    assert story.done
    rejected = CheckoutRejected(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                correlation_id="c", causation_id="e", cart_id="K",
                                reason="EMPTY")
    assert said(rejected) == "CheckoutRejected:EMPTY"
