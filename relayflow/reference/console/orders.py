"""Orders: search by order id, the saga's timeline, and a link to the Temporal UI."""

from __future__ import annotations

from functools import partial
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.web import BadInput, page, signed_in
from relayflow.reference.console.context import ReferenceConsole
from relayflow.reference.console.timeline import order_timeline

__all__ = ["routes"]

_MAX_ID = 200
"""Longest business key the contract allows."""


def _order_id(raw: str) -> str:
    order_id = raw.strip()
    if len(order_id) > _MAX_ID or not order_id.isprintable():
        raise BadInput(f"Not an order id: at most {_MAX_ID} characters, no control characters.")
    return order_id


async def orders_page(ref: ReferenceConsole, request: Request) -> Response:
    """The search form, and the timeline of the order searched for."""
    user = signed_in(request)
    order_id = _order_id(request.query_params.get("order_id", ""))
    if not order_id:
        return page(request, "orders.html", user=user, order_id="", timeline=None)
    c = ref.console
    timeline = await order_timeline(c.client, c.settings, c.codec, order_id)
    if timeline is None:
        return page(request, "orders.html", 404, user=user, order_id=order_id, timeline=None,
                    error=f"No order {order_id!r}: there is no saga order-{order_id} in "
                          f"namespace {c.settings.temporal_namespace}.")
    ui = (f"{c.temporal_ui_url}/namespaces/{c.settings.temporal_namespace}/workflows/"
          f"{quote(timeline.workflow_id, safe='')}/{timeline.run_id}/history")
    return page(request, "orders.html", user=user, order_id=order_id, timeline=timeline,
                temporal_ui=ui)


def routes(ref: ReferenceConsole) -> list[Route]:
    """The order search's route around ``ref``."""
    return [Route("/orders", partial(orders_page, ref), methods=["GET"])]
