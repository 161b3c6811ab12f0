"""A plaintext signal injected through Temporal, against a worker that encrypts (real stack).

The reference application's bridge and worker run through relayflow's own
runtime with payload encryption keys. An order that needs approval waits for
its decision. The attacker holds no key but can reach Temporal: with a client
without the codec (as ``temporal workflow signal`` would) it sends the
approval signal, a decision in the name of the very approver the saga asked.

Without a plaintext window the worker refuses the payload: the workflow task
fails with ``PlaintextPayloadRefused`` (in the history and the worker's log),
the saga stays where it was (asked with the codec: still waiting, nobody
decided), and no activity runs and no outcome is published. With
``RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL`` ahead (the migration window), the
same signal approves the order: the positive control.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError

from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalRequested,
    OrderCompleted,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.workflows.approval import APPROVAL_SIGNAL, approval_id_for
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.temporal.payload_codec import (
    ENCRYPTED_ENCODING,
    PlaintextPayloadRefused,
    new_key_entry,
    payload_codec,
)
from relayflow.testing import app_kafka
from schemas import EventMeta, Inbound
from tests.helpers.approver_keys import signed
from tests.helpers.support import order_placed
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

APPROVER = ReferenceSettings().approver
WAIT = 60.0
REFUSED = "refused a payload that is not encrypted (encoding 'json/plain')"


@asynccontextmanager
async def encrypting(stack: Settings, tmp_path: Path, **update: object,
                     ) -> AsyncIterator[tuple[Settings, Client, Client]]:
    """Bridge and worker with keys; the owner's client (with them) and the attacker's (without)."""
    keys = tmp_path / "payload-keys"
    keys.write_text(f"{new_key_entry('k-2026')}\n")
    keys.chmod(0o600)
    async with relayflow_running(stack, payload_encryption_keys_file=keys, **update) as settings:
        attacker = settings.model_copy(update={"payload_encryption_keys_file": None,
                                               "payload_accept_plaintext_until": None})
        assert payload_codec(attacker) is None
        yield settings, await connect_temporal(settings), await connect_temporal(attacker)


async def waiting_for_approval(settings: Settings, owner: Client,
                               ) -> tuple[OrderPlaced, WorkflowHandle[OrderSaga, OrderSagaResult]]:
    """An order at the approval threshold, its saga waiting for the approver."""
    order = order_placed(sku=f"SKU-SEC-{uuid.uuid4().hex[:8]}", quantity=1,
                         unit_price_cents=ReferenceSettings().approval_threshold_cents)
    async with app_kafka(settings, APP) as kafka:
        await kafka.send(order)
        await kafka.wait_for(ApprovalRequested, key=order.order_id, timeout=WAIT)
    handle = owner.get_workflow_handle_for(OrderSaga.run, f"order-{order.order_id}")
    state = await handle.query(OrderSaga.approval)
    assert (state.status, state.decided_by, state.approvers) == ("waiting", "", [APPROVER])
    return order, handle


async def inject_plaintext_approval(attacker: Client, order: OrderPlaced) -> None:
    """The attack: the approver's decision, signalled by a client without the codec.

    Signed with a registered key (the signature is not what this test is about):
    only the encoding can stop it, and the positive control shows it counts.
    """
    decision = signed(ApprovalDecided(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                      approval_id=approval_id_for(order.order_id),
                                      order_id=order.order_id, decision="APPROVED",
                                      decided_by=APPROVER))
    meta = EventMeta(event_type=ApprovalDecided.avro_name, event_id=str(decision.event_id),
                     correlation_id=f"forged-{order.order_id}")
    await attacker.get_workflow_handle(f"order-{order.order_id}").signal(
        APPROVAL_SIGNAL, Inbound[ApprovalDecided](event=decision, meta=meta))


async def events(handle: WorkflowHandle[OrderSaga, OrderSagaResult]) -> list[HistoryEvent]:
    return list((await handle.fetch_history()).events)


async def first_task_failure(handle: WorkflowHandle[OrderSaga, OrderSagaResult],
                             ) -> list[HistoryEvent]:
    """The history up to the first workflow task failure after the signal (waited for)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        history = await events(handle)
        signalled = [i for i, e in enumerate(history)
                     if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        failed = [i for i, e in enumerate(history)
                  if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                  and signalled and i > signalled[0]]  # the first task may fail on its own
        if failed:
            return history
        assert not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                       for e in history[signalled[0]:] if signalled), \
            "the worker completed a task with the plaintext signal: it acted on it"
        assert asyncio.get_running_loop().time() < deadline, [e.event_type for e in history]
        await asyncio.sleep(0.5)


async def test_a_plaintext_signal_is_refused_and_changes_nothing(
        relayflow_stack: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with encrypting(relayflow_stack, tmp_path) as (settings, owner, attacker):
        assert "ACCEPTED until" not in caplog.text  # no window: no warning
        order, handle = await waiting_for_approval(settings, owner)
        before = await handle.query(OrderSaga.status)

        await inject_plaintext_approval(attacker, order)
        history = await first_task_failure(handle)

        # What the attacker stored is plaintext: Temporal took it, the worker refused it.
        [signal] = [e.workflow_execution_signaled_event_attributes for e in history
                    if e.HasField("workflow_execution_signaled_event_attributes")]
        [stored] = signal.input.payloads
        assert stored.metadata["encoding"] == b"json/plain"
        assert APPROVER.encode() in stored.data
        task_failures = [e.workflow_task_failed_event_attributes.failure for e in history
                         if e.HasField("workflow_task_failed_event_attributes")]
        assert task_failures
        for task_failure in task_failures:
            # The task failure is itself encrypted; the owner reads it with the keys.
            assert task_failure.encoded_attributes.metadata["encoding"] == ENCRYPTED_ENCODING
            refusal = await owner.data_converter.decode_failure(task_failure)
            assert isinstance(refusal, ApplicationError)
            assert refusal.type == PlaintextPayloadRefused.__name__
            assert str(refusal).startswith(f"PlaintextPayloadRefused: {REFUSED}"), refusal
            assert APPROVER not in str(refusal)  # the refusal never quotes the payload
        logged = [r for r in caplog.records if r.exc_info
                  and isinstance(r.exc_info[1], PlaintextPayloadRefused)]
        assert logged, caplog.text  # the worker's log says why the task failed

        # Nothing changed: the task keeps failing, no task completed after the signal,
        # so no command (activity, outcome, timer) came of it.
        await asyncio.sleep(5)  # the server retries the task meanwhile
        after = await events(handle)
        assert all(e.event_type in {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED}
                   for e in after[after.index(history[signalled(history)]) + 1:]), \
            [e.event_type for e in after]
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        # A stuck task answers no query; the operator's way out (docs) is a reset to
        # the last completed task, signals not reapplied. Asked with the codec, the
        # saga is where it was: waiting for the approver, nobody decided, nothing refused.
        reset = await reset_without_signals(owner, handle, after)
        state = await reset.query(OrderSaga.approval)
        assert (state.status, state.decided_by, state.ignored, state.refused) == (
            "waiting", "", [], [])
        assert await reset.query(OrderSaga.status) == before
        assert not any(e.HasField("workflow_execution_signaled_event_attributes")
                       for e in await events(reset))


def signalled(history: list[HistoryEvent]) -> int:
    """Index of the (one) signal event."""
    [index] = [i for i, e in enumerate(history)
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    return index


async def reset_without_signals(owner: Client, handle: WorkflowHandle[OrderSaga, OrderSagaResult],
                                history: list[HistoryEvent],
                                ) -> WorkflowHandle[OrderSaga, OrderSagaResult]:
    """``temporal workflow reset --type LastWorkflowTask --reapply-exclude Signal``, as a call."""
    completed = [e.event_id for e in history[:signalled(history)]
                 if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    answer = await owner.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace=owner.namespace,
        workflow_execution=WorkflowExecution(workflow_id=handle.id),
        reason="plaintext signal refused", workflow_task_finish_event_id=completed[-1],
        request_id=str(uuid.uuid4()),
        reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL]))
    return owner.get_workflow_handle_for(OrderSaga.run, handle.id, run_id=answer.run_id)


async def test_with_the_migration_window_open_the_same_signal_is_accepted(
        relayflow_stack: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    until = datetime.now(UTC) + timedelta(days=1)
    async with encrypting(relayflow_stack, tmp_path,
                          payload_accept_plaintext_until=until) as (settings, owner, attacker):
        warnings = [r.getMessage() for r in caplog.records if "ACCEPTED until" in r.getMessage()]
        assert len(warnings) == 2, caplog.text  # one line at start of the bridge and the worker
        assert until.isoformat() in warnings[0]
        order, handle = await waiting_for_approval(settings, owner)

        async with app_kafka(settings, APP) as kafka:
            await inject_plaintext_approval(attacker, order)
            completed = await kafka.wait_for(OrderCompleted, key=order.order_id, timeout=WAIT)
        assert completed.order_id == order.order_id
        assert (await asyncio.wait_for(handle.result(), WAIT)).outcome == "OrderCompleted"
        assert (await handle.query(OrderSaga.approval)).decided_by == APPROVER
        assert not any(e.HasField("workflow_task_failed_event_attributes")
                       for e in await events(handle))
