"""The approvals inbox: the page, its live list (polled by htmx), and a decision."""

from __future__ import annotations

import uuid
from functools import partial

from aiokafka.errors import KafkaError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.service import RPCError

from relayflow.console.web import BadInput, is_htmx, page, posted, signed_in
from relayflow.kafka.sends import Delivered, send_event
from relayflow.operate.deadlines import BadInput as NotValid
from relayflow.operate.deadlines import Unanswered
from relayflow.operate.decide import Person, Refused, decide_approval
from relayflow.reference.approvals import ORDER_APPROVALS
from relayflow.reference.console.context import ReferenceConsole
from relayflow.reference.console.inbox import QUERY_TIMEOUT, SETTLE_SECONDS, inbox
from schemas.models import Event

__all__ = ["routes"]

_STATUS = {"unknown": 404, "not-yours": 403}
"""HTTP status of a refused decision (others are answers, 200)."""


async def inbox_page(ref: ReferenceConsole, request: Request) -> Response:
    """Approvals waiting for the user's groups."""
    user = signed_in(request)
    c = ref.console
    waiting, _ = await inbox(c.client, ref.orders, user, task_queue=c.settings.task_queue)
    return page(request, "approvals.html", user=user, waiting=waiting, closed=[],
                event_ids={a.order_id: uuid.uuid4() for a in waiting})


async def inbox_rows(ref: ReferenceConsole, request: Request) -> Response:
    """The list alone, for polling: new approvals, escalations, and what closed meanwhile."""
    user = signed_in(request)
    c = ref.console
    shown = request.query_params.getlist("shown")[:100]
    waiting, closed = await inbox(c.client, ref.orders, user, shown,
                                  task_queue=c.settings.task_queue)
    return page(request, "_approval_rows.html", user=user, waiting=waiting, closed=closed,
                event_ids={a.order_id: uuid.uuid4() for a in waiting})


async def decision(ref: ReferenceConsole, request: Request) -> Response:
    """Send the user's decision on an order (``operate.decide``); say what became of it."""
    user, form = await posted(request)
    c = ref.console
    order_id = request.path_params["order_id"]
    try:
        event_id = uuid.UUID(form.get("event_id", ""))
    except ValueError:
        raise BadInput("The form has no valid decision id; reload the page.") from None

    async def deliver(event: Event, topic: str, correlation_id: str | None,
                      causation_id: str | None) -> Delivered:
        return await send_event(c.producer, c.codec, event, topic,
                                correlation_id=correlation_id, causation_id=causation_id)

    result: object
    status = 200
    try:
        result = await decide_approval(
            ORDER_APPROVALS, c.client, deliver, subject_id=order_id,
            decision=form.get("decision", ""), by=Person(user.name, user.groups),
            comment=form.get("comment", ""), event_id=event_id,
            seconds=QUERY_TIMEOUT.total_seconds(), settle_seconds=SETTLE_SECONDS, key=ref.key)
    except Refused as refused:
        result, status = refused, _STATUS.get(refused.outcome, 200)
    except NotValid as error:
        raise BadInput(f"Not sent: {error}.") from None
    except (Unanswered, RPCError, KafkaError) as error:  # Temporal, a worker or Kafka
        raise BadInput(f"Not sent: {error}.", status=503) from None
    template = "_decision.html" if is_htmx(request) else "decision.html"
    return page(request, template, status, user=user, order_id=order_id, result=result)


def routes(ref: ReferenceConsole) -> list[Route]:
    """The inbox's routes around ``ref``."""
    return [
        Route("/approvals", partial(inbox_page, ref), methods=["GET"]),
        Route("/approvals/rows", partial(inbox_rows, ref), methods=["GET"]),
        Route("/approvals/{order_id}/decision", partial(decision, ref), methods=["POST"]),
    ]
