"""Answering a request from an update handler: the one way every workflow does it.

A route with action ``UPDATE`` or ``UPDATE_WITH_START`` calls a Workflow Update
with the request's ``Inbound``; the handler returns ``reply(event)``, and the
bridge publishes that event on the reply topic. Give the event a deterministic
id (``reply_id``), so the reply to a redelivered request has the same
``event-id``. To refuse a request, raise ``ApplicationError`` from the update's
validator: the bridge replies ``RequestFailed(reason="rejected")`` with the
error's type and message (``schemas.replies``).
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas import Inbound, Outcome
    from schemas.replies import Reply, reply_event_id

__all__ = ["reply", "reply_id"]


def reply(event: Outcome) -> Reply:
    """What an update handler returns to have ``event`` published as the request's reply.

    Args:
        event: An outcome the route's reply topic declares.
    """
    return Reply(event_type=event.avro_name, event=event.model_dump(mode="json"))


def reply_id(request: Inbound[Any], event_type: type[Outcome]) -> uuid.UUID:
    """Deterministic id of the reply of type ``event_type`` to ``request``.

    Args:
        request: The update's argument.
        event_type: The reply's model.
    """
    return reply_event_id(request.meta.event_id, event_type.avro_name)
