"""A workflow's pending activities (operator role): list, pause, unpause, reset.

Everything goes through ``relayflow.operate.activities``, the code behind
``relayflow activity``, so the console's actions are the CLI's and mean what
Temporal documents (pause stops a running activity at its next heartbeat;
unpause resumes it from its last heartbeat; reset starts it again at attempt
1). Any application's workflow, named by its id. What Temporal refuses (no
such workflow or activity, a server without the activity API) is shown as a
message; nothing was changed.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayflow.console.users import OPERATOR
from relayflow.console.web import BadInput, console, page, posted, printable, signed_in
from relayflow.operate import activities as operate
from relayflow.operate.errors import OperatorError

__all__ = ["ROUTES"]

_ACTIONS = ("pause", "unpause", "reset")


def _action(raw: str) -> str:
    if raw not in _ACTIONS:
        raise BadInput(f"Unknown action {raw[:40]!r}.", status=404)
    return raw


def _listing(workflow_id: str) -> str:
    return f"/activities?workflow={quote(workflow_id, safe='')}"


async def activities(request: Request) -> Response:
    """A form for a workflow id, and that workflow's pending activities."""
    user = signed_in(request, OPERATOR)
    raw = request.query_params.get("workflow", "")
    if not raw:
        return page(request, "activities.html", user=user, workflow_id="", pending=None,
                    refused="")
    workflow_id = printable(raw, "workflow id")
    c = console(request)
    try:
        pending = await operate.pending_activities(
            c.settings, workflow_id, seconds=c.settings.operator_timeout_seconds)
    except OperatorError as refused:
        return page(request, "activities.html", user=user, workflow_id=workflow_id,
                    pending=None, refused=str(refused))
    return page(request, "activities.html", user=user, workflow_id=workflow_id,
                pending=pending, refused="")


async def confirm(request: Request) -> Response:
    """Ask before pausing, unpausing or resetting an activity."""
    user = signed_in(request, OPERATOR)
    action = _action(request.path_params["action"])
    workflow_id = printable(request.query_params.get("workflow", ""), "workflow id")
    activity_id = printable(request.query_params.get("activity", ""), "activity id")
    return page(request, "activity_confirm.html", user=user, action=action,
                workflow_id=workflow_id, activity_id=activity_id, back=_listing(workflow_id))


async def act(request: Request) -> Response:
    """Pause, unpause or reset an activity, as ``relayflow activity`` does."""
    user, form = await posted(request, OPERATOR)
    action = _action(request.path_params["action"])
    workflow_id = printable(form.get("workflow", ""), "workflow id")
    activity_id = printable(form.get("activity", ""), "activity id")
    if form.get("confirm") != "yes":
        raise BadInput("Not confirmed: nothing was done.")
    drop_heartbeat = form.get("reset_heartbeat") == "yes"
    c = console(request)
    seconds = c.settings.operator_timeout_seconds
    try:
        if action == "pause":
            done = await operate.pause_activity(
                c.settings, workflow_id, activity_id, seconds=seconds,
                reason=f"paused by {user.name} in the console")
        elif action == "unpause":
            done = await operate.unpause_activity(c.settings, workflow_id, activity_id,
                                                  reset_heartbeat=drop_heartbeat,
                                                  seconds=seconds)
        else:
            done = await operate.reset_activity(c.settings, workflow_id, activity_id,
                                                reset_heartbeat=drop_heartbeat,
                                                seconds=seconds)
    except OperatorError as refused:
        return page(request, "message.html", user=user, title=f"{action}: {activity_id}",
                    message=str(refused), kind="error", back=_listing(workflow_id))
    return page(request, "message.html", user=user, title=f"{action}: {activity_id}",
                message=done.as_line(), kind="ok", back=_listing(workflow_id))


ROUTES = [
    Route("/activities", activities, methods=["GET"]),
    Route("/activities/{action}", confirm, methods=["GET"]),
    Route("/activities/{action}", act, methods=["POST"]),
]
