"""Where a business key stands (operator role): what ``relayflow status`` shows, as a page.

For any application: the key (an order id, a cart id) is turned into the
workflow ids the application's routes would start for it, and each one that
exists is shown with its state, its steps, what its queries answer (a cart's
``entity-state``, an order's ``status``), the activities it and its running
children wait for (attempt, last heartbeat and its details: how far a long
one got), the outcome events with its key, and a link to it in the Temporal
UI. Everything goes through ``relayflow.operate.status``, the code behind
``relayflow status``; what did not answer (a worker for the queries, Kafka)
is listed, the rest still shown. Every value is rendered as text.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.users import OPERATOR
from relayflow.console.web import console, page, printable, signed_in
from relayflow.operate.errors import OperatorError
from relayflow.operate.status import status as status_of

__all__ = ["ROUTES"]

_LONGEST_KEY = 200
"""Longest business key taken (a workflow id is made of it)."""


async def status(request: Request) -> Response:
    """A form for a business key, and where its workflows stand."""
    user = signed_in(request, OPERATOR)
    raw = request.query_params.get("key", "")
    c = console(request)
    if not raw:
        return page(request, "status.html", user=user, key="", report=None, refused="",
                    app_name=c.app.name)
    key = printable(raw, "business key", _LONGEST_KEY)
    try:
        report = await status_of(c.settings, key, seconds=c.settings.operator_timeout_seconds,
                                 app=c.app)
    except OperatorError as refused:  # no workflow for it, or Temporal silent
        return page(request, "status.html", user=user, key=key, report=None,
                    refused=str(refused), app_name=c.app.name)
    return page(request, "status.html", user=user, key=key, report=report, refused="",
                app_name=c.app.name)


ROUTES = [Route("/status", status, methods=["GET"])]
