"""Replies to requests: the contract of request/response over Kafka.

A route with action ``UPDATE`` or ``UPDATE_WITH_START`` turns a record into a
Temporal Workflow Update (its update id is the record's event id) and publishes
exactly one reply per delivery on a *reply topic* (``Topic.replies``):

* the update's result: an ``Outcome`` of the application's choosing, which
  the update handler returns wrapped in ``Reply`` (``workflows.replies.reply``);
* otherwise a framework ``RequestFailed`` whose ``reason`` (``ReplyReason``)
  says why: the validator rejected it, the handler failed, it did not complete
  within the route's bound, or the workflow is gone.

Every reply carries the request's key, its ``correlation-id`` header (the
request's, or its event id when it had none) and ``causation-id`` = the
request's event id. A request may name its reply topic in a ``reply-to``
header, but only one the application declares as a reply topic.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from schemas.described import DescribedStrEnum
from schemas.models import Key, Outcome

__all__ = ["FRAMEWORK_SCHEMA_FOLDER", "REPLY_NAMESPACE", "Reply", "ReplyReason", "RequestFailed",
           "reply_event_id"]

FRAMEWORK_SCHEMA_FOLDER = Path(__file__).resolve().parent / "avro"
"""The ``.avsc`` files of the events relayflow itself writes (``RequestFailed``)."""

REPLY_NAMESPACE = uuid.UUID("0d9b5f5e-3c55-4f0e-9a38-6f1a4f3e7a21")
"""uuid5 namespace of reply event ids."""


def reply_event_id(request_event_id: str, kind: str) -> uuid.UUID:
    """Deterministic id of a reply: the same for every delivery of one request.

    Args:
        request_event_id: The request's event id.
        kind: What the reply says (a ``ReplyReason``, or the application's
            reply event type), so different answers to one request differ.
    """
    return uuid.uuid5(REPLY_NAMESPACE, f"{request_event_id}/{kind}")


class ReplyReason(DescribedStrEnum):
    """A ``RequestFailed.reason`` value, with what causes it and what a requester may do.

    The values are part of the Kafka contract: they never change, new ones may
    be added (readers must accept values they do not know).

    Attributes:
        description: What caused it; what the requester may do.
    """

    REJECTED = "rejected", (
        "The update's validator refused the request (`error_type` and `message` say why); the "
        "workflow's state did not change. A rejection is not kept by Temporal, so a "
        "redelivered request is validated again.")
    FAILED = "failed", (
        "The update was accepted but its handler raised (`error_type`, `message`), or its "
        "result was no valid reply event; what the handler changed before it raised stays.")
    TIMED_OUT = "timed-out", (
        "No result within the route's `reply_within` bound. The update may still complete: "
        "send the same request again (same event id) and its result is replied without "
        "applying it twice, as long as the workflow's run has not changed.")
    WORKFLOW_NOT_FOUND = "workflow-not-found", (
        "No workflow with the route's id exists (use UPDATE_WITH_START to create it on first "
        "use); nothing was applied.")
    WORKFLOW_CLOSED = "workflow-closed", (
        "The workflow has completed, failed, been cancelled, terminated or timed out; "
        "nothing was applied.")


class RequestFailed(Outcome):
    """The framework's reply to a request that produced no result of the application's.

    Attributes:
        request_key: The request's Kafka key; the reply's key too.
        request_type: Avro full name of the request event.
        workflow_id: The workflow the request addressed.
        update: The Workflow Update it became.
        reason: A ``ReplyReason`` value.
        error_type: The ``ApplicationError`` type the workflow raised, may be empty.
        message: Human-readable detail.
    """

    avro_name: ClassVar[str] = "relayflow.replies.RequestFailed"
    key_field = "request_key"

    request_key: Key
    request_type: str
    workflow_id: str
    update: str
    reason: str
    error_type: str = ""
    message: str = ""


class Reply(BaseModel):
    """What an update handler returns: the reply event, by type name and fields.

    Temporal's payloads carry no type, so the handler names it; the bridge
    validates the fields against that event model and refuses a type the reply
    topic does not declare. Build it with ``workflows.replies.reply``.

    Attributes:
        event_type: Avro full name of an ``Outcome`` the reply topic carries.
        event: Its fields, as ``model_dump(mode="json")`` gives them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    event: dict[str, Any]
