"""Turning a routed event into a Temporal command, and classifying what went wrong.

Every failure is either *transient* (Temporal unreachable, overloaded or
misconfigured: retry later, commit nothing, drop nothing) or *permanent* (this
command can never succeed: the record goes to the dead-letter topic with the
reason). Configuration errors (unknown namespace, no permission) count as
transient on purpose: dead-lettering every record because of a bad deployment
would empty the topic into its DLQ; blocking until an operator fixes it keeps
order and loses nothing.

What each action means on duplicates and on a missing or closed target:

=================  ==============================  ===================================
action             target running / missing        target closed
=================  ==============================  ===================================
START              attach (``started``) / start    ``already-started`` (success)
SIGNAL             signal / ``target-not-found``   ``target-closed``
SIGNAL_WITH_START  signal / start + signal         ``target-closed``
CANCEL             request / ``target-not-found``  ``already-cancelled`` if it was
                                                   cancelled, else ``target-closed``
=================  ==============================  ===================================

Workflow ids: a route derives the id from the event's business key (its id
template, e.g. ``order-{order_id}``), so every event about one entity
addresses one workflow. Two policies apply to every start:

* id conflict (a workflow with the id is *running*): START attaches to it
  (``WorkflowIDConflictPolicy.USE_EXISTING``), so a redelivered start event
  starts nothing twice; SIGNAL_WITH_START signals it.
* id reuse (a workflow with the id has *closed*: completed, failed,
  cancelled, terminated, timed out): the route's ``id_reuse``
  (``bridge.routes.IdReuse``). By default ``NEVER``
  (``WorkflowIDReusePolicy.REJECT_DUPLICATE``): a business key's workflow
  runs once, ever. A later START for the key is acknowledged as
  ``already-started`` and does nothing: the record is committed, not
  dead-lettered, because a redelivery of the event that started the workflow
  is the usual cause and is harmless. Each such drop is logged at INFO
  (topic, partition, offset, event type, event id, workflow id) and counted
  (``relayflow_bridge_commands_total{result="already-started"}``); a second,
  different start event for a finished key is visible there by its event
  id. A SIGNAL_WITH_START for a closed workflow is dead-lettered
  (``target-closed``). ``AFTER_CLOSE`` (``ALLOW_DUPLICATE``) starts a new
  workflow for the key instead: an entity that expired comes back with its
  key's next event (``AFTER_FAILURE``: only after a failure, cancellation,
  termination or time-out).

Batched signals (a route with ``batch``) carry an ``InboundBatch``; a
SIGNAL_WITH_START of one starts the workflow with no argument. A signal
refused because the run has taken Temporal's per-run signal limit (10,000 by
default, which the dev server enforces too) is transient: an entity workflow
continues as new well before that, so the next attempt reaches the new run.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from temporalio.api.common.v1 import Payload
from temporalio.api.errordetails.v1 import NamespaceNotActiveFailure, NamespaceNotFoundFailure
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import RawValue, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bridge.failures import PermanentFailure, TransientFailure
from bridge.metrics import BridgeMetrics
from bridge.routes import Action, IdReuse, Route
from schemas import Event, Inbound
from schemas.dead_letters import DlqReason
from schemas.envelope import InboundBatch

__all__ = ["TEMPORAL_PAYLOAD_LIMIT", "Commands", "Delivery", "PayloadSizes", "TemporalCommands",
           "classify_temporal_error", "namespace_problem"]

log = logging.getLogger(__name__)

Delivery = Inbound[Event] | InboundBatch[Any]
"""What a command carries: one event, or (a route with ``batch``) consecutive events of one key."""

_REUSE = {
    IdReuse.NEVER: WorkflowIDReusePolicy.REJECT_DUPLICATE,
    IdReuse.AFTER_CLOSE: WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    IdReuse.AFTER_FAILURE: WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
}

# What the server says to a signal while the run continues as new, and how long to wait.
_CLOSING = "workflow is closing"
_SWITCH_PAUSES = (0.02, 0.05, 0.1, 0.2, 0.4)

# What the server says when a run has taken its per-run signal limit
# (history.maximumSignalsPerExecution), with INVALID_ARGUMENT.
_SIGNAL_LIMIT = "exceeded workflow execution limit for signal"


class Commands(Protocol):
    """Executes a routed event; ``TemporalCommands`` in production."""

    async def execute(self, route: Route, inbound: Delivery,
                      argument: RawValue | None = None) -> str:
        """Return what happened once the target acknowledged the command.

        ``argument`` is ``inbound`` already converted (``PayloadSizes.check``),
        to send as it is instead of converting it again.

        Raises:
            TransientFailure: Try again later.
            PermanentFailure: Dead-letter the record.
        """
        ...


_TRANSIENT_STATUSES = frozenset({
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.CANCELLED,
    # Deployment problems: block until fixed rather than dead-letter everything.
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
})


def _namespace_problem(error: RPCError) -> bool:
    details = error.grpc_status.details
    return bool(details) and (details[0].Is(NamespaceNotFoundFailure.DESCRIPTOR)
                              or details[0].Is(NamespaceNotActiveFailure.DESCRIPTOR))


namespace_problem = _namespace_problem
"""Whether an RPC error is about the namespace (missing, inactive): a deployment problem."""


TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024
"""Temporal's default ``limit.blobSize.error`` (the dev server's too): the largest
argument list, as one encoded ``Payloads`` message, a start or signal may carry;
a larger one is refused with ``INVALID_ARGUMENT: Blob data size exceeds limit.``"""

_BLOB_TOO_LARGE = "Blob data size exceeds limit"


def _payloads_size(payloads: Sequence[Payload]) -> int:
    """``Payloads(payloads=payloads).ByteSize()``, without building the message (a copy of each).

    Each element of the repeated field 1 is its tag (one byte), its length as a
    varint, then its bytes.
    """
    total = 0
    for payload in payloads:
        size = payload.ByteSize()
        total += 1 + max(1, (size.bit_length() + 6) // 7) + size
    return total


class PayloadSizes:
    """Measures what Temporal will see of an event and refuses what it would refuse.

    The Kafka bytes say little about it: the data converter turns the Avro body
    into JSON (field names per array item, numbers as text) and the payload codec
    adds its own envelope, so a record well under ``max_payload_bytes`` can still
    be over Temporal's limit and would otherwise be dead-lettered as ``rejected``
    by the server, parking its key. The conversion measured is the one sent:
    ``check`` returns it as a ``RawValue``, which the SDK's payload converter
    passes through unchanged, then applies the payload codec and external
    storage itself as for any argument (so only the codec runs twice).

    Args:
        converter: The Temporal client's data converter (converter, codec and
            external storage), so the measure is the SDK's own encoding.
        limit: Largest encoded argument list the server accepts.
    """

    def __init__(self, converter: DataConverter, limit: int = TEMPORAL_PAYLOAD_LIMIT) -> None:
        self._converter = converter
        self._limit = limit
        storage = converter.external_storage
        # With external storage, every payload from its threshold up leaves the history
        # as a reference: nothing the converter makes can be over the limit then.
        self._offloaded = storage is not None and storage.payload_size_threshold < limit

    async def measure(self, inbound: Inbound[Any] | InboundBatch[Any]) -> int:
        """Bytes of the ``Payloads`` message Temporal receives as the event's argument list."""
        return await self._size(self._converter.payload_converter.to_payloads([inbound]))

    async def _size(self, payloads: list[Payload]) -> int:
        codec = self._converter.payload_codec
        if codec is not None:
            payloads = await codec.encode(payloads)
        return _payloads_size(payloads)

    async def check(self, inbound: Inbound[Any] | InboundBatch[Any],
                    kafka_bytes: int) -> RawValue | None:
        """Raise unless Temporal accepts the event as an argument.

        Args:
            inbound: What the bridge passes to the workflow.
            kafka_bytes: Size of the record's value on Kafka, for the reason.

        Returns:
            ``inbound`` converted by the payload converter (not yet through the
            codec or external storage), for the SDK to send as it is; None when
            nothing was converted (external storage takes what is large).

        Raises:
            PermanentFailure: ``oversize``, with both sizes in the reason.
        """
        if self._offloaded:
            return None
        payloads = self._converter.payload_converter.to_payloads([inbound])
        size = await self._size(payloads)
        if size > self._limit:
            raise PermanentFailure(DlqReason.OVERSIZE, (
                f"{kafka_bytes} bytes on Kafka encode to {size} bytes for Temporal, over its "
                f"payload limit of {self._limit} bytes"))
        return RawValue(payloads[0])


def classify_temporal_error(error: BaseException, action: Action) -> Exception:
    """Map what a Temporal client call raised to a transient or permanent failure.

    Args:
        error: The exception from the client.
        action: The route's action (the same error can mean different things).

    Returns:
        A ``TransientFailure`` or ``PermanentFailure`` to raise from ``error``.
    """
    if isinstance(error, RPCError):
        return _classify_rpc_error(error, action)
    if isinstance(error, WorkflowAlreadyStartedError):
        # Only reachable for SIGNAL_WITH_START: the id belongs to a closed workflow.
        return PermanentFailure(DlqReason.TARGET_CLOSED, f"{action}: workflow already closed")
    if isinstance(error, TimeoutError):
        return TransientFailure(f"{action}: timed out")
    return PermanentFailure(DlqReason.INTERNAL_ERROR, f"{action}: {type(error).__name__}: {error}")


def _classify_rpc_error(error: RPCError, action: Action) -> Exception:
    what = f"{action} {error.status.name}: {error.message}"
    if (error.status in _TRANSIENT_STATUSES or _namespace_problem(error)
            or _SIGNAL_LIMIT in error.message):
        return TransientFailure(what)
    if error.status == RPCStatusCode.NOT_FOUND:
        return PermanentFailure(DlqReason.TARGET_NOT_FOUND, what)
    if error.status == RPCStatusCode.INVALID_ARGUMENT and _BLOB_TOO_LARGE in error.message:
        # A server configured below TEMPORAL_PAYLOAD_LIMIT: still the size, not the event.
        return PermanentFailure(DlqReason.OVERSIZE, what)
    return PermanentFailure(DlqReason.REJECTED, what)


class TemporalCommands:
    """Executes routed events against Temporal; the event's ``Inbound`` is the single argument.

    Args:
        client: Connected client (pydantic data converter).
        task_queue: Task queue new workflows start on.
        rpc_timeout: Bound on one call; a call that timed out is retried,
            which is safe because every command is idempotent.
        metrics: Times each call and counts the calls in flight.
    """

    def __init__(self, client: Client, task_queue: str, *,
                 rpc_timeout: timedelta = timedelta(seconds=10),
                 metrics: BridgeMetrics | None = None) -> None:
        self._metrics = metrics or BridgeMetrics()
        self._client = client
        self._task_queue = task_queue
        self._rpc_timeout = rpc_timeout

    async def execute(self, route: Route, inbound: Delivery,
                      argument: RawValue | None = None) -> str:
        """Send the command and return once Temporal acknowledged it.

        Args:
            route: Says what to do with which workflow.
            inbound: The event and its metadata (or, for a route with ``batch``,
                a batch of them), passed as the single argument.
            argument: ``inbound`` already converted (``PayloadSizes.check``),
                sent instead of converting it again.

        Returns:
            ``started``, ``already-started``, ``signalled``, ``cancel-requested``
            or ``already-cancelled``.

        Raises:
            TransientFailure: Try again later.
            PermanentFailure: Dead-letter the record.
        """
        first = inbound.events[0] if isinstance(inbound, InboundBatch) else inbound
        workflow_id = route.id_for(first.event)
        # A failpoint: a fault test may kill the process here (the repository\'s failpoints).
        sys.audit("relayflow.failpoint", "bridge.before-temporal")
        try:
            with self._metrics.temporal_call(route.action.value):
                return await self._send(route, workflow_id, inbound,
                                        inbound if argument is None else argument)
        except (TransientFailure, PermanentFailure):
            raise
        except Exception as error:
            raise classify_temporal_error(error, route.action) from error

    async def _send(self, route: Route, workflow_id: str, inbound: Delivery,
                    argument: Delivery | RawValue) -> str:
        start: dict[str, Any] = {
            "id": workflow_id, "task_queue": self._task_queue, "rpc_timeout": self._rpc_timeout,
            # Whether a closed workflow may run again for the same business key.
            "id_reuse_policy": _REUSE[route.id_reuse],
        }
        match route.action:
            case Action.START:
                try:
                    # A running workflow with this id is attached to, not failed on.
                    await self._client.start_workflow(
                        route.workflow, argument,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, **start)
                except WorkflowAlreadyStartedError:
                    assert isinstance(inbound, Inbound)  # START routes never batch
                    _log_start_of_closed(route, workflow_id, inbound)
                    return "already-started"
                return "started"
            case Action.SIGNAL_WITH_START:
                # A batched route's workflow takes its events from the signal only.
                args = [] if route.batch is not None else [argument]
                await _through_switches(lambda: self._client.start_workflow(
                    route.workflow, args=args, start_signal=route.signal,
                    start_signal_args=[argument], **start))
                return "signalled"
            case Action.SIGNAL:
                assert route.signal is not None  # the route table guarantees it
                signal = route.signal
                handle = self._handle(workflow_id)
                try:
                    await _through_switches(lambda: handle.signal(
                        signal, argument, rpc_timeout=self._rpc_timeout))
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND or _namespace_problem(error):
                        raise
                    raise await self._why_unreachable(handle, route) from error
                return "signalled"
            case Action.CANCEL:
                # Temporal accepts a cancel request for a closed workflow silently,
                # so look first: a closed target is reported, not ignored.
                handle = self._handle(workflow_id)
                status = await self._status(handle)
                if status is WorkflowExecutionStatus.CANCELED:
                    return "already-cancelled"
                if status is not WorkflowExecutionStatus.RUNNING:
                    raise _closed(route, status)
                await handle.cancel(rpc_timeout=self._rpc_timeout)
                return "cancel-requested"
        # UPDATE, UPDATE_WITH_START: requests need their record (reply-to) and a reply,
        # so bridge.updates runs them.
        raise PermanentFailure(DlqReason.INTERNAL_ERROR,
                               f"{route.action} routes are run by bridge.updates")

    def _handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(workflow_id)

    async def _status(self, handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
        try:
            description = await handle.describe(rpc_timeout=self._rpc_timeout)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND or _namespace_problem(error):
                raise
            raise PermanentFailure(DlqReason.TARGET_NOT_FOUND,
                                   f"no workflow {handle.id}") from error
        return description.status

    async def _why_unreachable(self, handle: WorkflowHandle[Any, Any], route: Route) -> Exception:
        status = await self._status(handle)
        if status is WorkflowExecutionStatus.RUNNING:
            return TransientFailure(f"{handle.id} was not found but runs now")
        return _closed(route, status)


async def _through_switches(send: Callable[[], Awaitable[object]]) -> None:
    """Send a signal, waiting out a target that is continuing as new.

    For the moment a run is closing into its next one, Temporal refuses
    signals (``RESOURCE_EXHAUSTED``, "workflow is closing"). An entity under a
    hot key does that every few signals, so it is retried here, briefly and
    quietly, rather than as an outage with the consumer's backoff.
    """
    for pause in _SWITCH_PAUSES:
        try:
            await send()
        except RPCError as error:
            if error.status != RPCStatusCode.RESOURCE_EXHAUSTED or _CLOSING not in error.message:
                raise
            await asyncio.sleep(pause)
        else:
            return
    await send()  # still switching: the consumer's retries take it from here


def _log_start_of_closed(route: Route, workflow_id: str, inbound: Inbound[Event]) -> None:
    """Say that a START did nothing because its workflow already closed (id reuse policy).

    INFO, not WARNING: the usual cause is a redelivery of the very event that
    started the workflow (after a crash or a rebalance, before the commit), which
    is expected under at-least-once delivery and needs nobody. The event id tells
    a redelivery from a second start event; the metric counts both.
    """
    meta = inbound.meta
    log.info("start event dropped: workflow %s already closed and is not started again for "
             "its key (id reuse policy %s); %s %s from %s[%d]@%d",
             workflow_id, _REUSE[route.id_reuse].name, meta.event_type, meta.event_id,
             meta.topic, meta.partition,
             meta.offset,
             extra={"topic": meta.topic, "partition": meta.partition, "offset": meta.offset,
                    "event_type": meta.event_type, "event_id": meta.event_id,
                    "workflow_id": workflow_id, "workflow_type": route.workflow})


def _closed(route: Route, status: WorkflowExecutionStatus | None) -> PermanentFailure:
    state = status.name if status is not None else "closed"
    return PermanentFailure(DlqReason.TARGET_CLOSED,
                            f"{route.action} {route.workflow}: workflow is {state}")
