"""Batches: running and finished, live progress bars, and each batch's failed items."""

from __future__ import annotations

import asyncio
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.web import BadInput, page, signed_in
from relayflow.reference.console.batches import failures_page, list_batches
from relayflow.reference.console.context import ReferenceConsole

__all__ = ["routes"]

_MAX_PAGE = 1_000_000


async def batches_page(ref: ReferenceConsole, request: Request) -> Response:
    """Every recent batch with its progress."""
    user = signed_in(request)
    c = ref.console
    found = await list_batches(c.client, ref.sizes, c.settings.task_queue)
    return page(request, "batches.html", user=user, batches=found)


async def batch_rows(ref: ReferenceConsole, request: Request) -> Response:
    """The list alone, for polling."""
    user = signed_in(request)
    c = ref.console
    return page(request, "_batch_rows.html", user=user,
                batches=await list_batches(c.client, ref.sizes, c.settings.task_queue))


async def failures(ref: ReferenceConsole, request: Request) -> Response:
    """A page of one batch's failed items, from the store."""
    user = signed_in(request)
    batch_id = request.path_params["batch_id"]
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 0 < int(raw) < _MAX_PAGE:
        raise BadInput(f"Not a page number: {raw[:20]!r}.")
    found = await asyncio.to_thread(failures_page, ref.store, batch_id, int(raw))
    return page(request, "batch_failures.html", user=user, batch_id=batch_id, failures=found)


def routes(ref: ReferenceConsole) -> list[Route]:
    """The batches' routes around ``ref``."""
    return [
        Route("/batches", partial(batches_page, ref), methods=["GET"]),
        Route("/batches/rows", partial(batch_rows, ref), methods=["GET"]),
        Route("/batches/{batch_id}/failures", partial(failures, ref), methods=["GET"]),
    ]
