"""The approvals inbox: the page, its live list (polled by htmx), and a decision."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.inbox import BadDecision, decide, inbox
from relayflow.console.web import BadInput, console, is_htmx, page, posted, signed_in

__all__ = ["ROUTES"]


async def inbox_page(request: Request) -> Response:
    """Approvals waiting for the user's groups."""
    user = signed_in(request)
    c = console(request)
    waiting, _ = await inbox(c.client, c.orders, user, task_queue=c.settings.task_queue)
    return page(request, "approvals.html", user=user, waiting=waiting, closed=[],
                event_ids={a.order_id: uuid.uuid4() for a in waiting})


async def inbox_rows(request: Request) -> Response:
    """The list alone, for polling: new approvals, escalations, and what closed meanwhile."""
    user = signed_in(request)
    c = console(request)
    shown = request.query_params.getlist("shown")[:100]
    waiting, closed = await inbox(c.client, c.orders, user, shown,
                                  task_queue=c.settings.task_queue)
    return page(request, "_approval_rows.html", user=user, waiting=waiting, closed=closed,
                event_ids={a.order_id: uuid.uuid4() for a in waiting})


async def decision(request: Request) -> Response:
    """Send the user's decision on one order; say what became of it."""
    user, form = await posted(request)
    c = console(request)
    order_id = request.path_params["order_id"]
    try:
        event_id = uuid.UUID(form.get("event_id", ""))
    except ValueError:
        raise BadInput("The form has no valid decision id; reload the page.") from None
    try:
        result = await decide(c.client, c.producer, c.codec, c.orders, user, order_id=order_id,
                              decision=form.get("decision", ""), comment=form.get("comment", ""),
                              event_id=event_id)
    except BadDecision as error:
        raise BadInput(f"Not sent: {error}.") from None
    status = {"unknown-order": 404, "not-yours": 403}.get(result.outcome, 200)
    template = "_decision.html" if is_htmx(request) else "decision.html"
    return page(request, template, status, user=user, order_id=order_id, result=result)


ROUTES = [
    Route("/approvals", inbox_page, methods=["GET"]),
    Route("/approvals/rows", inbox_rows, methods=["GET"]),
    Route("/approvals/{order_id}/decision", decision, methods=["POST"]),
]
