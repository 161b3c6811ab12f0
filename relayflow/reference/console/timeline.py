"""An order's saga as a timeline: what Temporal recorded, what it answers, what it published.

Read from three places: the saga's history (steps, compensations, decisions
received, approval deadlines, how it ended), its ``status`` and ``approval``
queries (where it stands), and the order's records on ``orders.outcomes``
(the outcome events as subscribers see them, with their ids).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from relayflow.config.settings import Settings
from relayflow.kafka.reads import StoredRecord, read_key, resolved_if_found
from relayflow.reference.events import ApprovalDecided, OrderPlaced
from relayflow.reference.topics import ORDERS_OUTCOMES
from relayflow.reference.workflows.approval import ApprovalState
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult, SagaStatus
from relayflow.runtime.clients import blob_store, kafka_clients
from schemas import Inbound
from schemas.codec import DecodeError
from schemas.formats import EventCodec
from schemas.headers import EVENT_ID

__all__ = ["COMPENSATIONS", "Entry", "OrderTimeline", "OutcomeRecord", "order_timeline"]

COMPENSATIONS = frozenset({"release_inventory", "refund_payment", "cancel_shipment"})
"""Activities that undo a step."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline.

    Attributes:
        at: When Temporal recorded it.
        kind: ``event``, ``step``, ``compensation``, ``approval``, ``outcome`` or ``end``.
        title: What happened.
        detail: Ids, errors, who decided.
        ok: False for a failure.
    """

    at: datetime
    kind: str
    title: str
    detail: str = ""
    ok: bool = True


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """An outcome event of the order on ``orders.outcomes``.

    Attributes:
        coordinates: ``topic/partition/offset``.
        event_type: Its ``event-type`` header.
        event_id: Its ``event-id`` header.
        fields: The decoded event (empty if it does not decode).
    """

    coordinates: str
    event_type: str
    event_id: str
    fields: dict[str, Any]


@dataclass
class OrderTimeline:
    """Everything the console shows of one order.

    Attributes:
        order_id: The order.
        workflow_id: Its saga's workflow id.
        run_id: The saga's run.
        status: Temporal's execution status (``RUNNING``, ``COMPLETED`` ...).
        order: The ``OrderPlaced`` it started with.
        entries: The timeline, oldest first.
        saga: The ``status`` query (None if it did not answer).
        approval: The ``approval`` query (None if it did not answer).
        outcomes: Its records on ``orders.outcomes``.
        result: What the saga returned, once it completed.
    """

    order_id: str
    workflow_id: str
    run_id: str
    status: str
    order: OrderPlaced | None = None
    entries: list[Entry] = field(default_factory=list)
    saga: SagaStatus | None = None
    approval: ApprovalState | None = None
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    result: OrderSagaResult | None = None

    @property
    def headline(self) -> str:
        """The order's state in a few words: its outcome once known, else the saga's status."""
        if self.result is None:
            return self.status
        return self.result.outcome + (f": {self.result.reason}" if self.result.reason else "")


async def order_timeline(client: Client, settings: Settings, codec: EventCodec,
                         order_id: str) -> OrderTimeline | None:
    """The timeline of ``order_id``'s saga, or None when there is no such saga."""
    handle = client.get_workflow_handle(f"order-{order_id}")
    try:
        described: WorkflowExecutionDescription = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    timeline = OrderTimeline(order_id, handle.id, described.run_id,
                             described.status.name if described.status else "UNKNOWN")
    reader = _HistoryReader(client)
    async for event in client.get_workflow_handle(handle.id, run_id=described.run_id
                                                  ).fetch_history_events():
        await reader.read(event, timeline)
    try:
        timeline.saga = await handle.query(OrderSaga.status)
        timeline.approval = await handle.query(OrderSaga.approval)
    except RPCError:
        pass  # no worker to answer: the history still tells the story
    timeline.outcomes = await _outcomes(settings, codec, order_id)
    return timeline


class _HistoryReader:
    """Turns history events into timeline entries (activities pair up by scheduled id)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._scheduled: dict[int, tuple[str, str]] = {}
        self._handlers: dict[int, Callable[[datetime, HistoryEvent, OrderTimeline],
                                           Awaitable[Entry | None]]] = {
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: self._started,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: self._activity_scheduled,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: self._activity_done,
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: self._activity_failed,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: self._activity_failed,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: self._signal,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: self._completed,
            **dict.fromkeys(_ENDS, self._ended),
            **dict.fromkeys(_NOTES, self._note),
        }

    async def read(self, event: HistoryEvent, timeline: OrderTimeline) -> None:
        """Add what ``event`` tells to ``timeline`` (most events tell nothing worth a line)."""
        handler = self._handlers.get(event.event_type)
        if handler is None:
            return
        entry = await handler(event.event_time.ToDatetime(tzinfo=UTC), event, timeline)
        if entry is not None:
            timeline.entries.append(entry)

    async def _started(self, at: datetime, event: HistoryEvent,
                       timeline: OrderTimeline) -> Entry:
        started = event.workflow_execution_started_event_attributes
        [inbound] = await self._decode(started.input.payloads, Inbound[OrderPlaced])
        timeline.order = inbound.event
        meta = inbound.meta
        return Entry(at, "event", "OrderPlaced received", f"event id {meta.event_id}, "
                     f"{meta.topic}[{meta.partition}]@{meta.offset}")

    async def _activity_scheduled(self, _: datetime, event: HistoryEvent,
                                  __: OrderTimeline) -> None:
        scheduled = event.activity_task_scheduled_event_attributes
        name = scheduled.activity_type.name
        published = (await self._published(scheduled.input.payloads)
                     if name == "publish_outcome" else "")
        self._scheduled[event.event_id] = (name, published)

    async def _activity_done(self, at: datetime, event: HistoryEvent,
                             _: OrderTimeline) -> Entry | None:
        return self._activity(at, event.activity_task_completed_event_attributes
                              .scheduled_event_id, "")

    async def _activity_failed(self, at: datetime, event: HistoryEvent,
                               _: OrderTimeline) -> Entry | None:
        failed = (event.activity_task_failed_event_attributes
                  if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                  else event.activity_task_timed_out_event_attributes)
        error = await self._client.data_converter.decode_failure(failed.failure)
        return self._activity(at, failed.scheduled_event_id, str(error) or "failed")

    async def _completed(self, at: datetime, event: HistoryEvent,
                         timeline: OrderTimeline) -> Entry:
        completed = event.workflow_execution_completed_event_attributes
        [timeline.result] = await self._decode(completed.result.payloads, OrderSagaResult)
        return Entry(at, "end", f"saga completed: {timeline.headline}",
                     ok=not timeline.result.reason)

    @staticmethod
    async def _ended(at: datetime, event: HistoryEvent, _: OrderTimeline) -> Entry:
        return Entry(at, "end", f"saga {_ENDS[event.event_type]}", ok=False)

    @staticmethod
    async def _note(at: datetime, event: HistoryEvent, _: OrderTimeline) -> Entry:
        kind, title = _NOTES[event.event_type]
        return Entry(at, kind, title)

    async def _signal(self, at: datetime, event: HistoryEvent, _: OrderTimeline) -> Entry:
        signaled = event.workflow_execution_signaled_event_attributes
        try:
            [inbound] = await self._decode(signaled.input.payloads, Inbound[ApprovalDecided])
        except (ValueError, TypeError):
            return Entry(at, "approval", f"signal {signaled.signal_name}")
        decision: ApprovalDecided = inbound.event
        comment = f": {decision.comment}" if decision.comment else ""
        return Entry(at, "approval", f"decision received: {decision.decision} by "
                     f"{decision.decided_by}", f"event id {decision.event_id}{comment}")

    def _activity(self, at: datetime, scheduled_id: int, error: str) -> Entry | None:
        name, published = self._scheduled.get(scheduled_id, ("activity", ""))
        if name == "approval_policy":
            return None
        if name == "publish_outcome":
            return Entry(at, "outcome", f"published {published}" if not error
                         else f"publishing {published} failed", error, ok=not error)
        kind = "compensation" if name in COMPENSATIONS else "step"
        return Entry(at, kind, f"{name} {'failed' if error else 'done'}", error, ok=not error)

    async def _published(self, payloads: Any) -> str:
        """``<event type> <event id>`` of a ``publish_outcome`` input."""
        try:
            [request] = await self._decode(payloads, dict)
        except (ValueError, TypeError):
            return ""
        if not isinstance(request, dict) or "event_type" not in request:
            return ""
        event = request.get("event") or {}
        return f"{str(request['event_type']).rsplit('.', 1)[-1]} {event.get('event_id', '')}"

    async def _decode(self, payloads: Any, kind: Any) -> list[Any]:
        if len(payloads) != 1:
            raise ValueError(f"{len(payloads)} payloads, expected one")
        return await self._client.data_converter.decode(list(payloads), [kind])


_NOTES = {
    EventType.EVENT_TYPE_TIMER_FIRED: ("approval", "approval deadline passed"),
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
        ("event", "cancellation requested (OrderCancelled)"),
}
_ENDS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
}


async def _outcomes(settings: Settings, codec: EventCodec, order_id: str) -> list[OutcomeRecord]:
    """The order's records on ``orders.outcomes``: only the partition its key goes to is read."""
    blobs = blob_store(settings)  # an outcome that went by claim check shows its value
    return [_outcome(codec, resolved_if_found(r, blobs)) for r in await read_key(
        kafka_clients(settings), [ORDERS_OUTCOMES], order_id.encode())]


def _outcome(codec: EventCodec, record: StoredRecord) -> OutcomeRecord:
    try:
        fields = codec.decode(record.value or b"").model_dump(mode="json")
    except DecodeError:
        fields = {}
    return OutcomeRecord(record.coordinates, record.event_type.rsplit(".", 1)[-1],
                         record.header(EVENT_ID), fields)
