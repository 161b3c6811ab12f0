"""Batches: running and finished, live progress bars, and each batch's failed items."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.batches import failures_page, list_batches
from relayflow.console.web import BadInput, console, page, signed_in

__all__ = ["ROUTES"]

_MAX_PAGE = 1_000_000


async def batches_page(request: Request) -> Response:
    """Every recent batch with its progress."""
    user = signed_in(request)
    c = console(request)
    found = await list_batches(c.client, c.sizes, c.settings.task_queue)
    return page(request, "batches.html", user=user, batches=found)


async def batch_rows(request: Request) -> Response:
    """The list alone, for polling."""
    user = signed_in(request)
    c = console(request)
    return page(request, "_batch_rows.html", user=user,
                batches=await list_batches(c.client, c.sizes, c.settings.task_queue))


async def failures(request: Request) -> Response:
    """A page of one batch's failed items, from the store."""
    user = signed_in(request)
    batch_id = request.path_params["batch_id"]
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 0 < int(raw) < _MAX_PAGE:
        raise BadInput(f"Not a page number: {raw[:20]!r}.")
    c = console(request)
    found = await asyncio.to_thread(failures_page, c.store, batch_id, int(raw))
    return page(request, "batch_failures.html", user=user, batch_id=batch_id, failures=found)


ROUTES = [
    Route("/batches", batches_page, methods=["GET"]),
    Route("/batches/rows", batch_rows, methods=["GET"]),
    Route("/batches/{batch_id}/failures", failures, methods=["GET"]),
]
