"""The reference application, assembled: its routing table, workflows and activities.

Built the way a team's own application is (``relayflow.Application``): the
event types of ``events``, the topics of ``topics``, the routing table below,
the workflows of ``workflows`` and the activities of ``activities``, built
from settings, and the endings of ``endings`` (terminal events of workflows
that were terminated or timed out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from bridge.routes import Action, Route, RouteTable
from relayflow.application import Application, WorkerResources
from relayflow.config import SettingError
from relayflow.reference.activities.approval_policy import (
    ApprovalKeys,
    ApprovalPolicyProvider,
    ApprovalRules,
    RegistryFile,
)
from relayflow.reference.activities.batches import BatchActivities
from relayflow.reference.activities.orders import OrderActivities
from relayflow.reference.activities.store import Store
from relayflow.reference.approvals import ORDER_APPROVALS
from relayflow.reference.checks import ReferenceBatchFailures, ReferenceChecks
from relayflow.reference.console import REFERENCE_PAGES
from relayflow.reference.demo import ReferenceDemo
from relayflow.reference.endings import REFERENCE_ENDINGS
from relayflow.reference.events import (
    EVENT_TYPES,
    SCHEMA_FOLDER,
    ApprovalDecided,
    BatchCancelled,
    BatchRequested,
    OrderCancelled,
    OrderPlaced,
)
from relayflow.reference.producers import ReferenceProducers
from relayflow.reference.queries import ReferenceStatusQueries
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.timeouts import use_activity_timeouts
from relayflow.reference.topics import (
    APPROVALS_DECISIONS,
    BATCHES_REQUESTS,
    ORDERS_EVENTS,
    REFERENCE_TOPICS,
)
from relayflow.reference.workflows.approval import APPROVAL_SIGNAL
from relayflow.reference.workflows.batch import BatchWorkflow, ChunkWorkflow
from relayflow.reference.workflows.order_saga import OrderSaga

__all__ = ["APP", "ROUTES", "WORKFLOWS", "reference_activities"]

_log = logging.getLogger(__name__)

WORKFLOWS: tuple[type, ...] = (OrderSaga, BatchWorkflow, ChunkWorkflow)
"""Every workflow of the reference application."""

_ROUTES = (
    #     topic          event type      action         workflow     workflow id      [signal]
    Route(ORDERS_EVENTS, OrderPlaced,    Action.START,  "OrderSaga", "order-{order_id}"),
    Route(ORDERS_EVENTS, OrderCancelled, Action.CANCEL, "OrderSaga", "order-{order_id}"),
    Route(APPROVALS_DECISIONS, ApprovalDecided, Action.SIGNAL, "OrderSaga", "order-{order_id}",
          APPROVAL_SIGNAL),
    Route(BATCHES_REQUESTS, BatchRequested, Action.START, "BatchWorkflow", "batch-{batch_id}"),
    Route(BATCHES_REQUESTS, BatchCancelled, Action.CANCEL, "BatchWorkflow", "batch-{batch_id}"),
)


def reference_activities(resources: WorkerResources) -> Sequence[Callable[..., Any]]:
    """The store-backed order and batch activities and the approval policy, from settings.

    Also fixes the reference workflows' activity timeouts for this worker
    process (``relayflow.reference.timeouts``), before its workflows run.

    Raises:
        SettingError: A setting of ``ReferenceSettings`` is bad, or the approval
            key registry cannot be read (one line naming it).
    """
    settings = ReferenceSettings.of(resources.settings)
    use_activity_timeouts(settings.activity_timeouts)
    store = Store(settings.store_path, card_limit_cents=settings.card_limit_cents)
    policy = ApprovalPolicyProvider(ApprovalRules(
        thresholds_cents=settings.thresholds_cents,
        timeout_seconds=settings.approval_timeout_seconds,
        escalation_timeout_seconds=settings.escalation_timeout_seconds,
        approver=settings.approver,
        escalation_approver=settings.escalation_approver,
    ), _approval_keys(settings))
    batches = BatchActivities(store, history_event_limit=settings.batch_history_event_limit,
                              metrics=resources.metrics,
                              item_work_seconds=settings.batch_item_work_seconds)
    return [*OrderActivities(store).all(), policy.approval_policy, policy.approval_keys,
            *batches.all()]


def _approval_keys(settings: ReferenceSettings) -> Callable[[], ApprovalKeys]:
    """The trusted keys as the registry file says each time; checked (and said) once now."""
    registry, required = RegistryFile(settings.approval_keys), settings.approval_signatures != "off"
    try:
        trusted = registry.current()
    except (OSError, ValueError) as error:
        raise SettingError(f"RELAYFLOW_APPROVAL_KEYS: {error}") from None
    if not required:
        _log.warning("RELAYFLOW_APPROVAL_SIGNATURES=off: UNSIGNED APPROVAL DECISIONS COUNT. "
                     "Anyone who can write approvals.decisions or signal a saga can approve "
                     "as any approver asked. Development only.")
    elif not trusted.keys:
        _log.warning("no approval keys registered (RELAYFLOW_APPROVAL_KEYS): every approval "
                     "decision will be refused until keys are registered")
    return lambda: ApprovalKeys(required=required, registry=registry.current())


APP = Application(
    name="relayflow",
    event_types=tuple(EVENT_TYPES.values()),
    topics=REFERENCE_TOPICS,
    routes=_ROUTES,
    schema_folder=SCHEMA_FOLDER,
    workflows=WORKFLOWS,
    activities=reference_activities,
    extensions=(ReferenceChecks(), ReferenceBatchFailures(), ReferenceDemo(), ReferenceProducers(),
                ReferenceStatusQueries(), ORDER_APPROVALS, REFERENCE_PAGES),
    endings=REFERENCE_ENDINGS,
)
"""relayflow's orders, approvals and batches (``RELAYFLOW_APP=relayflow.reference:APP``)."""

ROUTES: RouteTable = APP.route_table()
"""The reference routing table, validated."""
