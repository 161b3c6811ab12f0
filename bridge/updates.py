"""Requests: a record becomes a Workflow Update, and its answer a reply event on Kafka.

A route with action ``UPDATE`` (or ``UPDATE_WITH_START``, which starts the
workflow first when it does not run) sends the record's ``Inbound`` as the
argument of the route's update, with the record's event id as the update id,
waits for the result within the route's ``reply_within`` bound, and publishes
exactly one reply per delivery (``schemas.replies``):

=====================================  ============================================
what happened                          reply
=====================================  ============================================
the update returned a ``Reply``        that event (a type the reply topic declares)
the validator raised                   ``RequestFailed(reason="rejected")``
the handler raised after accepting     ``RequestFailed(reason="failed")``
it returned no valid reply event       ``RequestFailed(reason="failed")``
no result within ``reply_within``      ``RequestFailed(reason="timed-out")``
no workflow with the id                ``RequestFailed(reason="workflow-not-found")``
the workflow has closed                ``RequestFailed(reason="workflow-closed")``
=====================================  ============================================

A business rejection is a reply, never a dead letter. A malformed record is
dead-lettered before any of this (``bridge.decoding``), and so is a request
whose ``reply-to`` header names a topic the application does not declare as a
reply topic (``reply-to-refused``): a producer can never make the bridge write
to a topic of its choosing, and the update is not sent.

Duplicates: the update id is the event id, and Temporal keeps an update's
outcome in its run, so a redelivered request is not applied twice and gets
the same result, replied again with the same event id (subscribers drop it
by ``event-id``). Temporal keeps no trace of a rejection, so a redelivered
rejected request is validated again. Dedup does not cross runs: after
continue-as-new the new run does not know the id (measured on Temporal Server
1.32), so an entity workflow that continues as new must carry the event ids it
applied and check them in its validator.

Commits: the record counts as done only once the reply is on Kafka
(``acks=all``); until then a failure is transient and the whole request is
retried with the same update id, which Temporal deduplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bridge.commands import classify_temporal_error, namespace_problem
from bridge.consumed import ConsumedRecord
from bridge.failures import PermanentFailure, TransientFailure, refused, writing_to
from bridge.metrics import BridgeMetrics
from bridge.routes import Action, Route
from schemas import Event, Inbound, Outcome
from schemas.codec import EncodeError
from schemas.dead_letters import DlqReason
from schemas.formats import EventCodec
from schemas.framing import to_record
from schemas.headers import REPLY_TO
from schemas.replies import Reply, ReplyReason, RequestFailed, reply_event_id

__all__ = ["Answer", "UpdateCommands", "failed_reply", "reply_topic", "result_reply"]

log = logging.getLogger(__name__)

class _Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, partition: int | None = None,
                            timestamp_ms: int | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> Any: ...


_REFUSED_TYPE = "ReplyRefused"
_MAX_MESSAGE = 1000
"""A ``RequestFailed.message`` is cut to this many characters (an error can be long)."""


def reply_topic(route: Route, headers: Sequence[tuple[str, bytes | None]],
                declared: Collection[str]) -> str:
    """Where a request's reply goes: its ``reply-to`` header, if allowed, else the route's.

    Args:
        route: The request's route (names the default reply topic).
        headers: The record's raw header pairs.
        declared: The application's reply topics.

    Raises:
        PermanentFailure: ``reply-to-refused``: the header names an undeclared
            topic, is repeated, or is not UTF-8.
    """
    named = [raw for name, raw in headers if name == REPLY_TO]
    if not named:
        assert route.reply_topic is not None  # the route table guarantees it
        return route.reply_topic
    if len(named) > 1:
        raise PermanentFailure(DlqReason.REPLY_TO_REFUSED, f"{len(named)} reply-to headers")
    try:
        topic = (named[0] or b"").decode("utf-8")
    except UnicodeDecodeError as error:
        raise PermanentFailure(DlqReason.REPLY_TO_REFUSED, "reply-to is not UTF-8") from error
    if topic not in declared:
        raise PermanentFailure(DlqReason.REPLY_TO_REFUSED,
                               f"reply-to {topic[:200]!r} is not a declared reply topic")
    return topic


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to one request.

    Attributes:
        event: The reply event.
        result: What happened, for logs and metrics: ``replied`` or a ``ReplyReason``.
    """

    event: Outcome
    result: str


def failed_reply(route: Route, inbound: Inbound[Event], reason: ReplyReason, message: str,
                 error_type: str = "", *, now: datetime | None = None) -> Answer:
    """A framework ``RequestFailed`` reply.

    Args:
        route: The request's route.
        inbound: The request.
        reason: Why there is no result.
        message: Detail (cut to 1000 characters).
        error_type: The ``ApplicationError`` type the workflow raised, if any.
        now: When (default: now).
    """
    meta = inbound.meta
    assert route.update is not None  # the route table guarantees it
    event = RequestFailed(
        event_id=reply_event_id(meta.event_id, reason.value),
        occurred_at=now or datetime.now(UTC),
        correlation_id=meta.correlation_id, causation_id=meta.event_id,
        request_key=inbound.event.key, request_type=meta.event_type,
        workflow_id=route.id_for(inbound.event), update=route.update,
        reason=reason.value, error_type=error_type, message=message[:_MAX_MESSAGE])
    return Answer(event, reason.value)


def result_reply(route: Route, inbound: Inbound[Event], result: object, codec: EventCodec,
                 allowed: frozenset[str]) -> Answer:
    """The reply for an update's result: its event, or ``failed`` when it is no valid reply.

    Args:
        route: The request's route.
        inbound: The request.
        result: What the update returned (a ``Reply`` as Temporal decoded it).
        codec: Knows the reply event types.
        allowed: The event types the reply topic declares.
    """
    try:
        reply = Reply.model_validate(result)
    except ValidationError as error:
        return failed_reply(route, inbound, ReplyReason.FAILED,
                            f"the update returned no Reply: {error}", "InvalidReply")
    model = codec.event_types.get(reply.event_type)
    if reply.event_type not in allowed or model is None or not issubclass(model, Outcome):
        return failed_reply(route, inbound, ReplyReason.FAILED,
                            f"{reply.event_type} is not a reply its topic declares",
                            "InvalidReply")
    try:
        event = model.model_validate(reply.event)
    except ValidationError as error:
        return failed_reply(route, inbound, ReplyReason.FAILED,
                            f"{reply.event_type}: {error}", "InvalidReply")
    return Answer(event, "replied")


def _failure(error: WorkflowUpdateFailedError) -> tuple[str, str]:
    """The ``error_type`` and message of what the update handler or validator raised."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.type or "", cause.message
    return type(cause).__name__, str(cause)


class UpdateCommands:
    """Executes request routes: the update, then its reply on Kafka.

    Args:
        client: Connected client (pydantic data converter).
        task_queue: Task queue an ``UPDATE_WITH_START`` starts its workflow on.
        codec: Encodes replies (the application's codec).
        producer: Started producer (``acks="all"``, idempotent).
        reply_topics: The application's reply topics, each with the event
            types its replies may be.
        rpc_timeout: Bound on the calls besides the update (describe, poll).
        metrics: Times the Temporal calls.
    """

    def __init__(self, client: Client, task_queue: str, codec: EventCodec,
                 producer: _Producer, reply_topics: Mapping[str, frozenset[str]], *,
                 rpc_timeout: timedelta = timedelta(seconds=10),
                 metrics: BridgeMetrics | None = None) -> None:
        self._client = client
        self._task_queue = task_queue
        self._codec = codec
        self._producer = producer
        self._reply_topics = dict(reply_topics)
        self._rpc_timeout = rpc_timeout
        self._metrics = metrics or BridgeMetrics()

    async def execute(self, route: Route, inbound: Inbound[Event],
                      record: ConsumedRecord) -> str:
        """Send the update, then its reply; return once the reply is on Kafka.

        Returns:
            ``replied`` or the ``ReplyReason`` of the reply sent.

        Raises:
            TransientFailure: Try again later (same update id: not applied twice).
            PermanentFailure: Dead-letter the record (``reply-to-refused``).
        """
        topic = reply_topic(route, record.headers, self._reply_topics.keys())
        try:
            with self._metrics.temporal_call(route.action.value):
                answer = await self._ask(route, inbound, self._reply_topics[topic])
        except (TransientFailure, PermanentFailure):
            raise
        except Exception as error:
            raise classify_temporal_error(error, route.action) from error
        await self._send(topic, answer, route, inbound)
        return answer.result

    async def _ask(self, route: Route, inbound: Inbound[Event],
                   allowed: frozenset[str]) -> Answer:
        bound = route.reply_within
        accepted: WorkflowUpdateHandle[Any] | None = None
        try:
            async with asyncio.timeout(bound.total_seconds()):
                accepted = await self._start(route, inbound, bound)
                result = await accepted.result(rpc_timeout=bound)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # The SDK turns a cancellation into this error: the bridge is stopping,
                # not the bound passing. Reply nothing; the request is redelivered.
                raise asyncio.CancelledError from None
            stage = "accepted but not completed" if accepted else "not accepted"
            return failed_reply(route, inbound, ReplyReason.TIMED_OUT,
                                f"{stage} within {bound.total_seconds():g} s; send the same "
                                "request again to learn its result")
        except WorkflowUpdateFailedError as error:
            error_type, message = _failure(error)
            reason = (ReplyReason.REJECTED if accepted is None or await self._rejected(accepted)
                      else ReplyReason.FAILED)
            return failed_reply(route, inbound, reason, message, error_type)
        except WorkflowAlreadyStartedError:
            # UPDATE_WITH_START on a closed workflow: its id is never reused.
            return failed_reply(route, inbound, ReplyReason.WORKFLOW_CLOSED,
                                f"{route.workflow} {route.id_for(inbound.event)} has closed")
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND or namespace_problem(error):
                raise
            return await self._gone(route, inbound, error)
        return result_reply(route, inbound, result, self._codec, allowed)

    async def _start(self, route: Route, inbound: Inbound[Event],
                     bound: timedelta) -> WorkflowUpdateHandle[Any]:
        workflow_id = route.id_for(inbound.event)
        name, update_id = route.update or "", inbound.meta.event_id
        if route.action is Action.UPDATE_WITH_START:
            start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
                route.workflow, inbound, id=workflow_id, task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # As for every start: a business key's workflow runs once, ever.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
            return await self._client.start_update_with_start_workflow(
                name, inbound, start_workflow_operation=start, id=update_id, result_type=Reply,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED, rpc_timeout=bound)
        handle = self._client.get_workflow_handle(workflow_id)
        return await handle.start_update(name, inbound, id=update_id, result_type=Reply,
                                         wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                                         rpc_timeout=bound)

    async def _rejected(self, handle: WorkflowUpdateHandle[Any]) -> bool:
        """Whether a failed update was rejected: Temporal keeps no rejected update to poll."""
        again = self._client.get_workflow_handle(handle.workflow_id).get_update_handle(
            handle.id, workflow_run_id=handle.workflow_run_id)
        try:
            await again.result(rpc_timeout=self._rpc_timeout)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        except WorkflowUpdateFailedError:
            return False
        return False

    async def _gone(self, route: Route, inbound: Inbound[Event], error: RPCError) -> Answer:
        """The reply for a workflow that is not there: never was, or has closed."""
        handle = self._client.get_workflow_handle(route.id_for(inbound.event))
        try:
            status = (await handle.describe(rpc_timeout=self._rpc_timeout)).status
        except RPCError as missing:
            if missing.status != RPCStatusCode.NOT_FOUND or namespace_problem(missing):
                raise
            return failed_reply(route, inbound, ReplyReason.WORKFLOW_NOT_FOUND,
                                f"no workflow {handle.id}")
        if status is WorkflowExecutionStatus.RUNNING:
            raise TransientFailure(f"{handle.id} was not found but runs now") from error
        state = status.name if status is not None else "closed"
        return failed_reply(route, inbound, ReplyReason.WORKFLOW_CLOSED,
                            f"{route.workflow} {handle.id} is {state}")

    async def _send(self, topic: str, answer: Answer, route: Route,
                    inbound: Inbound[Event]) -> None:
        """Publish the reply; a reply Kafka refuses for its size becomes a small ``failed`` one."""
        meta = inbound.meta
        try:
            await self._codec.prepare_encode(answer.event.avro_name)
            record = to_record(answer.event, self._codec, correlation_id=meta.correlation_id,
                               causation_id=meta.event_id, traceparent=meta.traceparent or None)
        except EncodeError as error:
            answer = failed_reply(route, inbound, ReplyReason.FAILED, str(error), "InvalidReply")
            record = to_record(answer.event, self._codec, correlation_id=meta.correlation_id,
                               causation_id=meta.event_id, traceparent=meta.traceparent or None)
        except OSError as error:  # the schema registry
            raise TransientFailure(f"reply to {topic}: {error}") from error
        try:
            with writing_to(topic):
                await self._producer.send_and_wait(topic, record.value, key=record.key,
                                                   headers=record.headers)
        except KafkaError as error:
            if not refused(error):
                raise TransientFailure(f"reply to {topic}: {error}") from error
            if isinstance(answer.event, RequestFailed) and answer.event.error_type == _REFUSED_TYPE:
                raise PermanentFailure(DlqReason.INTERNAL_ERROR,
                                       f"{topic} refused even a small reply: {error}") from error
            small = failed_reply(route, inbound, ReplyReason.FAILED,
                                 f"{topic} refused the reply: {error}", _REFUSED_TYPE)
            await self._send(topic, small, route, inbound)
            return
        except (OSError, TimeoutError) as error:
            raise TransientFailure(f"reply to {topic}: {error}") from error
        log.debug("replied %s to %s %s on %s", answer.result, meta.event_type, meta.event_id,
                 topic, extra={"event_id": meta.event_id, "reply_topic": topic,
                               "workflow_id": route.id_for(inbound.event)})
