"""Deciding an approval: the one service behind ``relayflow decide`` and the console's inbox.

The application's ``Approvals`` extension says where the approval stands;
a decision is sent only when it can count:

1. the decision is ``APPROVED`` or ``REJECTED`` and the comment has no
   control characters (a stripped, empty comment is none); with a name
   given (the CLI's ``--by``), the event is validated before anything connects;
2. the subject exists (else ``NoSuchApproval``);
3. the one deciding is one the workflow asked (``Approvals.may_decide`` on
   ``ApprovalStatus.asked``): for a workflow that counts anyone's decision,
   only the approver it asked (else ``NotYours``);
4. it still waits (else ``NotWaiting``: already decided, timed out, or not
   waiting), so a decision that cannot count is never sent.

With a key (``relayflow.operate.signing``) the event is signed, so a
workflow that requires proof can count it; without one it goes unsigned.

The event then goes to the application's decisions topic with the waiting
workflow's correlation id, caused by the request it answers. With
``settle_seconds`` the workflow is watched taking it (``counted``) or
ignoring it (``ignored``: someone decided first); else it is ``sent``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from temporalio.client import Client

from relayflow.application import Application, load_application
from relayflow.config.settings import Settings
from relayflow.kafka.sends import Delivered
from relayflow.operate.approvals import (
    Approvals,
    ApprovalStatus,
    DecisionValue,
    approvals_of,
)
from relayflow.operate.deadlines import (
    QUERY_GRACE,
    BadInput,
    NotFound,
    OperatorError,
    connected_temporal,
    temporal_answers,
)
from relayflow.operate.send import Sent, send
from relayflow.operate.signing import SignedDecisions, decision_key
from schemas.models import Event
from schemas.signatures import SigningKey

__all__ = [
    "DECISIONS",
    "Decided",
    "Decision",
    "Deliver",
    "NoSuchApproval",
    "NotWaiting",
    "NotYours",
    "Person",
    "Refused",
    "decide",
    "decide_approval",
    "decision_event",
]

Decision = Literal["approve", "reject"]
DECISIONS: dict[str, DecisionValue] = {"approve": "APPROVED", "reject": "REJECTED"}
"""The command's words and the event's values."""
_POLL_SECONDS = 0.2

Deliver = Callable[[Event, str, str | None, str | None], Awaitable[Delivered]]
"""Sends ``(event, topic, correlation_id, causation_id)`` as a contract record."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone deciding as a member of groups (the console's signed-in user).

    Attributes:
        name: The person.
        groups: Their approver groups.
    """

    name: str
    groups: frozenset[str]

    def group(self, status: ApprovalStatus) -> str | None:
        """The group they decide as: the approver asked now if theirs, else an earlier one."""
        if status.approver in self.groups:
            return status.approver
        return next((g for g in status.asked if g in self.groups), None)

    def decided_by(self, status: ApprovalStatus) -> str | None:
        """``<group>/<name>``, or None when none of their groups was asked."""
        group = self.group(status)
        return None if group is None else f"{group}/{self.name}"


class Refused(OperatorError):
    """Nothing was sent: the decision could not count.

    Attributes:
        outcome: ``unknown``, ``not-yours``, ``already-decided``, ``timed-out``
            or ``not-waiting``.
        message: What to tell the person deciding (the console's line).
        status: Where the approval stands, when known.
    """

    def __init__(self, outcome: str, message: str, status: ApprovalStatus | None = None, *,
                 line: str | None = None) -> None:
        super().__init__(line or message)
        self.outcome, self.message, self.status = outcome, message, status


class NoSuchApproval(Refused, NotFound):
    """There is no such subject."""


class NotYours(Refused, BadInput):
    """The one deciding is not among those asked."""


class NotWaiting(Refused, NotFound):
    """The approval waits for no decision (decided, timed out, not required)."""


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision sent.

    Attributes:
        event: The decision event.
        delivered: Where it landed.
        outcome: ``counted`` (the workflow took it), ``ignored`` (someone
            decided first), ``refused`` (the workflow refused it and still
            waits: e.g. unsigned, or a key that may not act for the one deciding)
            or ``sent`` (not taken yet, or not watched).
        message: What to tell the person deciding.
        status: Where the approval stands afterwards (as sent, when not watched).
    """

    event: Event
    delivered: Delivered
    outcome: str
    message: str
    status: ApprovalStatus


def _checked_comment(comment: str | None) -> str | None:
    if comment is not None and not all(c.isprintable() or c in "\r\n\t" for c in comment):
        raise BadInput("comment: control characters are not allowed")
    return (comment or "").strip() or None


def _closed(approvals: Approvals, status: ApprovalStatus) -> NotWaiting | None:
    """Why nothing can be decided now, or None while the workflow waits."""
    if status.status in {"approved", "rejected"}:
        outcome, message = "already-decided", (f"Already {status.status} by "
                                               f"{status.decided_by}: nothing was sent.")
    elif status.status == "timed-out":
        deadline = f" ({status.deadline:%Y-%m-%d %H:%M:%S} UTC)" if status.deadline else ""
        outcome, message = "timed-out", (f"Too late: nobody decided before the deadline"
                                         f"{deadline} and the {approvals.subject} failed; "
                                         "nothing was sent.")
    elif status.status != "waiting":
        outcome, message = "not-waiting", (f"This {approvals.subject} is not waiting for a "
                                           f"decision (approval {status.status}): nothing was "
                                           "sent.")
    else:
        return None
    return NotWaiting(outcome, message, status, line=f"{approvals.subject} "
                      f"{status.subject_id!r} has no pending approval: {message}")


def _not_yours(approvals: Approvals, status: ApprovalStatus, by: str | Person) -> NotYours:
    asked = status.asked
    what = f"{approvals.subject} {status.subject_id}"
    if isinstance(by, Person):
        return NotYours("not-yours", f"{by.name} is not among the approvers of {what} "
                        f"({', '.join(asked)}): nothing was sent.", status)
    return NotYours("not-yours", f"{by!r} may not decide {approvals.subject} "
                    f"{status.subject_id!r}: it counts decisions by {' or '.join(asked)} "
                    f"({approvals.who_may_decide}); nothing was sent.", status)


async def decide_approval(approvals: Approvals, client: Client, deliver: Deliver, *,
                          subject_id: str, decision: str, by: str | Person,
                          comment: str | None = None, event_id: uuid.UUID | None = None,
                          seconds: float, settle_seconds: float = 0.0,
                          key: SigningKey | None = None) -> Decided:
    """Send a decision on ``subject_id``'s approval, if it can count (see the module docs).

    Args:
        approvals: The application's approvals.
        client: Connected Temporal client.
        deliver: Sends the event (the caller's producer).
        subject_id: What waits (an order id).
        decision: ``APPROVED`` or ``REJECTED``.
        by: ``decided_by`` as given (an approver asked, or ``<approver>/<person>``),
            or a ``Person`` who decides as ``<group>/<name>``.
        comment: Free text for the outcome.
        event_id: The event's id (a form's, so that sending it twice counts once);
            default: a new one.
        seconds: Bound of each query.
        settle_seconds: How long to watch the workflow take the decision (0: not).
        key: Sign the decision with it (``relayflow.operate.signing``); None: unsigned.

    Raises:
        BadInput: ``decision`` or ``comment`` is malformed, the event is invalid, or
            ``key`` was given to an application whose decisions are not signed.
        NoSuchApproval: There is no such subject.
        NotYours: ``by`` was not asked.
        NotWaiting: The approval waits for no decision.
        relayflow.operate.errors.Unanswered: No worker answered a query.
    """
    if decision not in DECISIONS.values():
        raise BadInput(f"decision must be APPROVED or REJECTED, not {decision[:40]!r}")
    value: DecisionValue = "APPROVED" if decision == "APPROVED" else "REJECTED"
    if key is not None and not isinstance(approvals, SignedDecisions):
        raise BadInput(f"this application's {approvals.subject} decisions are not signed: "
                       "give no key")
    note = _checked_comment(comment)
    event_id = event_id or uuid.uuid4()
    if isinstance(by, str):  # bad input: nothing is asked
        approvals.decision_event(subject_id, value, by, note, event_id)
    try:
        status = await approvals.status(client, subject_id, seconds=seconds)
    except NotFound as missing:
        message = f"There is no {approvals.subject} {subject_id!r}."
        raise NoSuchApproval("unknown", message,
                             line=f"{message[:-1]} ({missing}).") from None
    who = by.decided_by(status) if isinstance(by, Person) else by
    if status.asked_anyone and (who is None or not approvals.may_decide(who, status.asked)):
        raise _not_yours(approvals, status, by)
    closed = _closed(approvals, status)
    if closed is not None:
        raise closed
    assert who is not None
    event = approvals.decision_event(subject_id, value, who, note, event_id)
    if key is not None:
        assert isinstance(approvals, SignedDecisions)  # checked above, before anything connects
        event = approvals.signed(event, key)
    context = await approvals.decision_context(client, status)
    delivered = await deliver(event, context.topic, context.correlation_id, context.causation_id)
    sent = Decided(event, delivered, "sent", f"{value.capitalize()} sent as {who}; the "
                   f"{approvals.subject} has not taken it yet.", status)
    if settle_seconds <= 0:
        return sent
    return await _settled(approvals, client, sent, value, who, seconds=seconds,
                          settle_seconds=settle_seconds)


async def _settled(approvals: Approvals, client: Client, sent: Decided, value: DecisionValue,
                   who: str, *, seconds: float, settle_seconds: float) -> Decided:
    """Watch the workflow take (or ignore) the decision just sent, for a while."""
    mark = f"{value} by {who} ignored"
    status = sent.status
    try:
        async with asyncio.timeout(settle_seconds):
            while True:
                status = await approvals.status(client, sent.status.subject_id, seconds=seconds)
                if status.status != "waiting" and status.decided_by == who:
                    return Decided(sent.event, sent.delivered, "counted",
                                   f"{value.capitalize()} as {who}.", status)
                noted = [n for n in status.ignored if n.startswith(mark)]
                if status.status == "waiting" and noted:  # refused: unproven, or not asked
                    why = noted[-1].removeprefix(mark).removeprefix(": ")
                    return Decided(sent.event, sent.delivered, "refused",
                                   f"Not counted: {why}. The {approvals.subject} still waits.",
                                   status)
                if status.status != "waiting" or noted:
                    before = (f"{status.status} by {status.decided_by}" if status.decided_by
                              else status.status)
                    return Decided(sent.event, sent.delivered, "ignored",
                                   f"Too late: the approval was {before} before your decision "
                                   f"arrived, which the {approvals.subject} ignored.", status)
                await asyncio.sleep(_POLL_SECONDS)
    except TimeoutError:
        pass
    return Decided(sent.event, sent.delivered, "sent", sent.message.replace(
        "yet.", "yet (this page will show it)."), status)


def decision_event(app: Application, subject_id: str, decision: Decision, by: str,
                   comment: str | None) -> Event:
    """The decision event ``relayflow decide`` would send (validated; nothing connects).

    Raises:
        NotFound: The application has no approvals.
        BadInput: ``by`` or ``comment`` break the event's model (empty, too long).
    """
    return approvals_of(app).decision_event(subject_id, DECISIONS[decision], by, comment,
                                            uuid.uuid4())


async def decide(settings: Settings, order_id: str, decision: Decision, *, by: str,
                 comment: str | None = None, seconds: float, key_file: Path | None = None,
                 ) -> Sent:
    """``relayflow decide``: send the decision on ``order_id``'s pending approval.

    The configured application's ``Approvals`` say where it stands
    (``decide_approval``); the event goes out like ``relayflow send``'s.

    Args:
        settings: Where Kafka and Temporal are; ``settings.app`` is the application.
        order_id: What waits (the reference application's order id).
        decision: ``approve`` or ``reject``.
        by: Who decides (``decided_by``): an approver asked, or ``<approver>/<person>``.
        comment: Free text for the outcome.
        seconds: Bound of each call.
        key_file: The key to sign with (default: ``relayflow.operate.signing.decision_key``).

    Returns:
        The decision and where it landed.

    Raises:
        NotFound: The application has no approvals; no such subject; it waits for no decision.
        BadInput: ``by`` may not decide it, or the event is not valid.
        relayflow.operate.deadlines.Unanswered: Temporal, a worker or Kafka did not answer.
    """
    app = load_application(settings.app)
    approvals = approvals_of(app)

    async def deliver(event: Event, topic: str, correlation_id: str | None,
                      causation_id: str | None) -> Delivered:
        sent = await send(settings, app, event, topic, seconds=seconds,
                          correlation_id=correlation_id, causation_id=causation_id)
        return sent.delivered

    approvals.decision_event(order_id, DECISIONS[decision], by, _checked_comment(comment),
                             uuid.uuid4())
    key = decision_key(settings, key_file)
    client = await connected_temporal(settings, seconds)
    # Bounds the whole: a describe, a query, the start of a history, then Kafka's own bound.
    async with temporal_answers(settings, 4 * seconds + QUERY_GRACE):
        decided = await decide_approval(approvals, client, deliver, subject_id=order_id,
                                        decision=DECISIONS[decision], by=by, comment=comment,
                                        seconds=seconds, key=key)
    return Sent(decided.event, decided.delivered)
