"""The reference application's approvals, as relayflow's operator tools reach them.

An order saga asks for approval when the order's amount reaches the
threshold (``workflows.approval``); its ``approval`` query says where it
stands, and an ``ApprovalDecided`` on ``approvals.decisions`` answers it.
``ORDER_APPROVALS`` is the ``relayflow.operate.approvals.Approvals``
extension the reference ``Application`` lists, so ``relayflow approvals``,
``relayflow decide``, ``relayflow top`` and the console's inbox serve it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from relayflow.operate.approvals import ApprovalStatus, DecisionContext, DecisionValue, Pending
from relayflow.operate.deadlines import BadInput, NotFound, query_worker
from relayflow.operate.send import validation_lines
from relayflow.operate.signing import APPROVER_KEY, CONSOLE_KEY, DEV_KEYS
from relayflow.reference.decision_signatures import sign_decision
from relayflow.reference.events import ApprovalDecided, OrderPlaced
from relayflow.reference.pending_approvals import COLUMNS, pending_approvals
from relayflow.reference.settings import DEV_REGISTRY, ReferenceSettings
from relayflow.reference.topics import APPROVALS_DECISIONS
from relayflow.reference.workflows.approval import ApprovalState, approval_id_for, may_decide
from relayflow.reference.workflows.order_saga import OrderSaga
from schemas import Event, Inbound
from schemas.signatures import KeyRegistry, SigningKey
from workflows.outcomes import outcome_event_id

__all__ = ["ORDER_APPROVALS", "OrderApprovals", "approval_status", "order_id_of",
           "workflow_id_of"]


def workflow_id_of(order_id: str) -> str:
    """The saga's workflow id (the routes' ``order-{order_id}``)."""
    return f"order-{order_id}"


def order_id_of(workflow_id: str) -> str:
    """The order id of a saga's workflow id."""
    return workflow_id.removeprefix("order-")


def approval_status(order_id: str, state: ApprovalState) -> ApprovalStatus:
    """The saga's ``approval`` answer as the operator tools read it."""
    return ApprovalStatus(
        subject_id=order_id, workflow_id=workflow_id_of(order_id), status=state.status,
        approver=state.approver, approvers=tuple(state.approvers),
        decided_by=state.decided_by, deadline=state.deadline, escalated=state.escalated,
        ignored=tuple(state.ignored), details=state)


class OrderApprovals:
    """Approvals of the order sagas (``relayflow.operate.approvals.Approvals``)."""

    subject = "order"
    columns = COLUMNS
    who_may_decide = "one of 'may decide', or <approver>/<person>"

    async def pending(self, client: Client, *, task_queue: str | None,
                      seconds: float | None) -> list[Pending]:
        """Running sagas that wait for a decision (``pending_approvals``)."""
        return list(await pending_approvals(client, task_queue=task_queue, seconds=seconds))

    async def status(self, client: Client, subject_id: str, *,
                     seconds: float) -> ApprovalStatus:
        """The saga's ``approval`` query, running or ended.

        Raises:
            NotFound: No saga for the order.
            relayflow.operate.errors.Unanswered: No worker answered.
        """
        workflow_id = workflow_id_of(subject_id)
        try:
            described = await client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=timedelta(seconds=seconds))
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no workflow {workflow_id}") from None
            raise
        handle = client.get_workflow_handle_for(OrderSaga.run, workflow_id,
                                                run_id=described.run_id)
        state = await query_worker(handle, OrderSaga.approval, seconds,
                                   task_queue=described.task_queue)
        return approval_status(subject_id, state)

    def may_decide(self, decided_by: str, asked: Sequence[str]) -> bool:
        """The saga's own rule (``workflows.approval.may_decide``)."""
        return may_decide(decided_by, asked)

    def decision_event(self, subject_id: str, decision: DecisionValue, decided_by: str,
                       comment: str | None, event_id: uuid.UUID) -> ApprovalDecided:
        """The ``ApprovalDecided`` for the order (validated).

        Raises:
            BadInput: ``decided_by`` or ``comment`` break the model (empty, too long).
        """
        try:
            return ApprovalDecided(event_id=event_id, occurred_at=datetime.now(UTC),
                                   approval_id=approval_id_for(subject_id), order_id=subject_id,
                                   decision=decision, decided_by=decided_by, comment=comment)
        except ValidationError as error:
            raise BadInput("not a valid ApprovalDecided:\n  "
                           + "\n  ".join(validation_lines(error))) from None

    async def decision_context(self, client: Client, status: ApprovalStatus) -> DecisionContext:
        """``approvals.decisions``; the order's correlation id; the request it answers."""
        handle = client.get_workflow_handle(status.workflow_id)
        correlation_id: str | None = None
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [inbound] = await client.data_converter.decode(payloads, [Inbound[OrderPlaced]])
            correlation_id = str(inbound.meta.correlation_id) or None
            break
        asked = outcome_event_id(status.workflow_id, "approval-escalated" if status.escalated
                                 else "approval-requested")
        return DecisionContext(APPROVALS_DECISIONS, correlation_id, str(asked))

    def signed(self, event: Event, key: SigningKey) -> ApprovalDecided:
        """The decision signed with ``key`` (``decision_signatures``)."""
        if not isinstance(event, ApprovalDecided):
            raise TypeError(f"not an ApprovalDecided: {type(event).__name__}")
        return sign_decision(event, key)

    def dev_keys(self, data_dir: Path) -> list[Path]:
        """The dev stack's operator and console keys, acting for both approver groups.

        Made once under ``<data_dir>/keys/`` (0600) and registered in
        ``<data_dir>/approval-keys.json``, which the worker reads by default.
        """
        settings = ReferenceSettings(data_dir=data_dir)
        groups = (settings.approver, settings.escalation_approver)
        folder = data_dir / DEV_KEYS
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        registry_path = data_dir / DEV_REGISTRY
        registry = KeyRegistry.load(registry_path) if registry_path.is_file() else KeyRegistry()
        made = []
        for name, key_id in ((APPROVER_KEY, "dev-operator"), (CONSOLE_KEY, "dev-console")):
            path = folder / name
            if not path.is_file():
                SigningKey.generate(key_id, groups).save(path)
            key = SigningKey.load(path)
            registry = registry.with_key(key.trusted())
            made.append(path)
        registry_path.write_text(registry.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return [*made, registry_path]


ORDER_APPROVALS = OrderApprovals()
"""The extension the reference application lists."""
