"""The operator's commands without services: parsing, steps from history, rendering, exit codes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from rich.console import Console
from temporalio.api.common.v1 import ActivityType, WorkflowType
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes,
    ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes,
    HistoryEvent,
    StartChildWorkflowExecutionInitiatedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
)
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from bridge.parking import ParkEntry
from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.devstack.process import free_port
from relayflow.kafka.reads import StoredRecord
from relayflow.operate.deadlines import BadInput, temporal_unanswered
from relayflow.operate.decide import decision_event
from relayflow.operate.records import ShownRecord
from relayflow.operate.send import event_type_named, parse_event, topic_for
from relayflow.operate.status import steps_of, ui_link, workflow_ids
from relayflow.operate.top import Frame, parse_metrics, render
from relayflow.reference.app import APP
from relayflow.reference.events import ApprovalDecided, OrderCompleted, OrderPlaced
from schemas.headers import (
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    EVENT_TYPE,
)
from schemas.topics import PARKED_KEYS

E = EventType
ORDER = {"order_id": "A-1", "customer_id": "c-1", "amount_cents": 1000,
         "items": [{"sku": "SKU-MUG", "quantity": 2, "unit_price_cents": 500}]}


def _scheduled(event_id: int, name: str) -> HistoryEvent:
    return HistoryEvent(event_id=event_id, event_type=E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                        activity_task_scheduled_event_attributes=(
                            ActivityTaskScheduledEventAttributes(
                                activity_type=ActivityType(name=name))))


def _child(event_id: int, kind: EventType.ValueType, initiated: int) -> HistoryEvent:
    chunk = WorkflowType(name="ChunkWorkflow")
    if kind == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        return HistoryEvent(
            event_id=event_id, event_type=kind,
            start_child_workflow_execution_initiated_event_attributes=(
                StartChildWorkflowExecutionInitiatedEventAttributes(workflow_type=chunk)))
    if kind == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
        return HistoryEvent(
            event_id=event_id, event_type=kind,
            child_workflow_execution_started_event_attributes=(
                ChildWorkflowExecutionStartedEventAttributes(workflow_type=chunk,
                                                             initiated_event_id=initiated)))
    return HistoryEvent(
        event_id=event_id, event_type=kind,
        child_workflow_execution_completed_event_attributes=(
            ChildWorkflowExecutionCompletedEventAttributes(workflow_type=chunk,
                                                           initiated_event_id=initiated)))


def test_steps_come_from_the_history_in_order_with_children_counted() -> None:
    initiated = E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    history = [
        _scheduled(5, "reserve_inventory"),
        HistoryEvent(event_id=6, event_type=E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                     activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(
                         scheduled_event_id=5)),
        HistoryEvent(event_id=7, event_type=E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                     activity_task_completed_event_attributes=(
                         ActivityTaskCompletedEventAttributes(scheduled_event_id=5))),
        HistoryEvent(event_id=8, event_type=E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                     workflow_execution_signaled_event_attributes=(
                         WorkflowExecutionSignaledEventAttributes(
                             signal_name="approval_decided"))),
        _scheduled(9, "charge_payment"),
        HistoryEvent(event_id=10, event_type=E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                     activity_task_failed_event_attributes=ActivityTaskFailedEventAttributes(
                         scheduled_event_id=9, failure=Failure(message="declined"))),
        _child(11, initiated, 0), _child(12, initiated, 0), _child(13, initiated, 0),
        _child(14, E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, 11),
        _child(15, E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, 11),
        _child(16, E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, 12),
        _child(17, E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, 13),
        _scheduled(18, "publish_outcome"),
    ]
    assert [(s.kind, s.name, s.state, s.detail) for s in steps_of(history)] == [
        ("activity", "reserve_inventory", "completed", ""),
        ("signal", "approval_decided", "received", ""),
        ("activity", "charge_payment", "failed", "declined"),
        ("children", "ChunkWorkflow", "2 completed, 1 running", ""),
        ("activity", "publish_outcome", "scheduled", ""),
    ]


def test_an_id_names_the_workflows_the_routes_start_and_links_to_the_ui() -> None:
    assert workflow_ids(APP, "A-1") == ["order-A-1", "batch-A-1"]
    local = Settings(temporal_ui_port=8233, temporal_namespace="ns 1")
    assert ui_link(local, "order-A/1", "r1") == \
        "http://127.0.0.1:8233/namespaces/ns%201/workflows/order-A%2F1/r1/history"
    remote = Settings(temporal_ui_base_url="https://temporal.example.com/")
    assert ui_link(remote, "order-A", "r1").startswith(
        "https://temporal.example.com/namespaces/default/workflows/order-A/")


def test_an_event_is_validated_and_gets_an_id_and_a_time() -> None:
    model = event_type_named(APP, "OrderPlaced")
    assert model is event_type_named(APP, OrderPlaced.avro_name) is OrderPlaced
    event = parse_event(model, json.dumps(ORDER))
    assert isinstance(event, OrderPlaced)
    assert event.event_id.version == 4
    given = uuid.uuid4()
    assert parse_event(model, json.dumps(ORDER | {"event_id": str(given)})).event_id == given


@pytest.mark.parametrize(("text", "said"), [
    ("{", "not JSON"),
    ("[1]", "a OrderPlaced is a JSON object, not list"),
    (json.dumps(ORDER | {"amount_cents": 1}), "amount_cents 1 != sum of lines 1000"),
    (json.dumps(ORDER | {"currency": "euro"}), "currency: String should match pattern"),
])
def test_bad_input_says_why(text: str, said: str) -> None:
    with pytest.raises(BadInput) as raised:
        parse_event(OrderPlaced, text)
    assert said in str(raised.value)
    assert raised.value.exit_code == 2


def test_an_event_no_route_takes_needs_a_topic() -> None:
    with pytest.raises(BadInput, match="pass --topic"):
        topic_for(APP, OrderCompleted, None)
    assert topic_for(APP, OrderCompleted, "orders.outcomes") == "orders.outcomes"
    with pytest.raises(BadInput, match="no event type 'Nope'"):
        event_type_named(APP, "Nope")


def test_a_decision_is_validated_before_anything_connects() -> None:
    event = decision_event(APP, "A-1", "reject", "ann", None)
    assert isinstance(event, ApprovalDecided)
    assert event.decision == "REJECTED"
    with pytest.raises(BadInput, match="decided_by"):
        decision_event(APP, "A-1", "approve", "", None)


def _record(topic: str, value: bytes | None, headers: dict[str, str]) -> StoredRecord:
    return StoredRecord(topic, 2, 7, b"A-1", value,
                        tuple((n, v.encode()) for n, v in headers.items()), 0)


def test_a_dead_letter_shows_its_reason_and_source() -> None:
    letter = ShownRecord(_record("orders.events.dlq", b"junk", {
        EVENT_TYPE: OrderPlaced.avro_name, DLQ_REASON: "unknown-framing", DLQ_ERROR: "bad",
        DLQ_SOURCE_TOPIC: "orders.events", DLQ_SOURCE_PARTITION: "2",
        DLQ_SOURCE_OFFSET: "41"}), problem="unknown-framing: junk")
    line = letter.as_line()
    assert line.startswith("orders.events.dlq/2/7 1970-01-01T00:00:00.000+00:00 key='A-1' ")
    assert "DEAD LETTER reason=unknown-framing from orders.events[2]@41" in line
    assert "(value not decoded: unknown-framing: junk)" in line
    shown = letter.as_json()
    assert shown["dead_letter"]["source"] == {"topic": "orders.events", "partition": 2,
                                              "offset": 41}
    assert (shown["event"], shown["problem"]) == (None, "unknown-framing: junk")


def test_a_parked_key_and_its_release() -> None:
    entry = ParkEntry(reason="invalid-event", source_partition=2, source_offset=41,
                      dlq_partition=2, dlq_offset=7, parked_at=datetime.now(UTC))
    parked = ShownRecord(_record(PARKED_KEYS, entry.model_dump_json().encode(), {}),
                         parked=entry)
    assert "parked: invalid-event at [2]@41, dead letters from 2/7" in parked.as_line()
    assert parked.as_json()["parked"]["reason"] == "invalid-event"
    released = ShownRecord(_record(PARKED_KEYS, None, {}))
    assert released.as_line().endswith("released")
    assert released.as_json()["parked"] is None


def test_metrics_text_is_parsed_and_a_frame_rendered() -> None:
    registry = CollectorRegistry()
    Counter("relayflow_bridge_dead_letters", "x", ["topic", "reason"],
            registry=registry).labels("orders.events", "unknown-schema").inc(3)
    Gauge("relayflow_bridge_temporal_calls_in_flight", "x", registry=registry).set(2)
    samples, families = parse_metrics(generate_latest(registry).decode())
    assert ("relayflow_bridge_dead_letters_total",
            {"topic": "orders.events", "reason": "unknown-schema"}, 3.0) in samples
    assert {"relayflow_bridge_dead_letters", "relayflow_bridge_temporal_calls_in_flight"} \
        <= families

    frame = Frame(["http://x/metrics"], totals={"dead_lettered": 3.0},
                  rates={"dead_lettered": 1.5}, in_flight=2.0,
                  dead_letters={"orders.events.dlq": 4}, parked_keys={},
                  pending_approvals=None, running={"BatchWorkflow": 1},
                  unanswered=["a worker did not answer"])
    console = Console(record=True, width=200)
    console.print(render(frame))
    text = console.export_text()
    rows = {tuple(cell.strip() for cell in line.strip("│ ").split("│"))
            for line in text.splitlines()}
    for expected in (("dead lettered", "3", "1.5"), ("dead letters orders.events.dlq", "4"),
                     ("pending approvals", "-"), ("running BatchWorkflow", "1"),
                     ("Temporal calls in flight", "2")):
        assert expected in rows, text
    assert "did not answer: a worker did not answer" in text


def test_what_counts_as_temporal_not_answering() -> None:
    assert temporal_unanswered(RPCError("down", RPCStatusCode.UNAVAILABLE, b""))
    assert temporal_unanswered(RuntimeError("Failed client connect: refused"))
    assert not temporal_unanswered(RPCError("no", RPCStatusCode.NOT_FOUND, b""))
    assert not temporal_unanswered(ValueError("connect"))


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch) -> str:
    """Kafka and Temporal at a port nothing listens on."""
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS", address)
    monkeypatch.setenv("RELAYFLOW_TEMPORAL_ADDRESS", address)
    return address


@pytest.mark.parametrize(("args", "said"), [
    (["send", "OrderPlaced", "--json", "{"], "not JSON"),
    (["send", "OrderPlaced"], "exactly one of --json TEXT or --file PATH"),
    (["send", "OrderPlaced", "--json", "{}", "--file", "x"], "exactly one of --json"),
    (["send", "OrderPlaced", "--file", "/no/such/file.json"], "cannot read /no/such/file.json"),
    (["decide", "A-1", "approve", "--by", ""], "not a valid ApprovalDecided"),
])
def test_bad_input_exits_2_before_anything_connects(nowhere: str, args: list[str],
                                                    said: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert "did not answer" not in result.stderr  # nothing was asked


def test_the_event_comes_from_a_file_or_stdin(nowhere: str, tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER | {"amount_cents": 1}))
    from_file = CliRunner().invoke(app, ["send", "OrderPlaced", "--file", str(path)])
    from_stdin = CliRunner().invoke(app, ["send", "OrderPlaced", "--json", "-"],
                                    input=json.dumps(ORDER | {"amount_cents": 2}))
    assert (from_file.exit_code, from_stdin.exit_code) == (2, 2)
    assert "amount_cents 1 != sum of lines" in from_file.stderr
    assert "amount_cents 2 != sum of lines" in from_stdin.stderr


@pytest.mark.parametrize(("args", "who"), [
    (["send", "OrderPlaced", "--json", json.dumps(ORDER)], "Kafka"),
    (["tail", "orders.events"], "Kafka"),
    (["dlq", "list"], "Kafka"),
    (["status", "A-1"], "Temporal"),
    (["approvals"], "Temporal"),
    (["decide", "A-1", "approve", "--by", "ann"], "Temporal"),
])
def test_a_dependency_that_does_not_answer_is_named_with_exit_3(nowhere: str, args: list[str],
                                                                who: str) -> None:
    result = CliRunner().invoke(app, [*args, "--timeout", "5"])
    assert result.exit_code == 3, result.output
    assert f"relayflow: {who} at {nowhere} did not answer" in result.stderr
