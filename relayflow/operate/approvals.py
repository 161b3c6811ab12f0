"""Human approvals, for any application that has them: the ``Approvals`` extension.

relayflow's bridge and worker know nothing of approvals: an application's
workflows ask people and wait for a decision event. Its operator tools
(``relayflow approvals``, ``relayflow decide``, ``relayflow top``, the
console's inbox) reach those approvals through the object the application
lists in ``Application.extensions`` that is an ``Approvals``: which
workflows wait for whom, whose decision counts, and the decision event with
its topic and ids. An application without one is told so in one line
(``approvals_of``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from temporalio.client import Client

from relayflow.application import Application, load_application
from relayflow.config.settings import Settings
from relayflow.operate.deadlines import connected_temporal, listing_and_queries, temporal_answers
from relayflow.operate.errors import NotFound, Unanswered
from schemas.models import Event

__all__ = [
    "ApprovalStatus",
    "Approvals",
    "DecisionContext",
    "DecisionValue",
    "Pending",
    "PendingList",
    "PendingUnanswered",
    "approvals_in",
    "approvals_of",
    "pending_approvals",
]

DecisionValue = Literal["APPROVED", "REJECTED"]
"""What a decision may be."""


@dataclass(frozen=True, slots=True)
class ApprovalStatus:
    """Where one approval stands, as its workflow answers.

    Attributes:
        subject_id: What waits for approval (an order id).
        workflow_id: The workflow that waits.
        status: ``pending`` (not asked yet), ``not-required``, ``waiting``,
            ``approved``, ``rejected`` or ``timed-out``.
        approver: Who is asked now ("" before anyone is).
        approvers: Whose decision the workflow counts now; empty for a
            workflow that counts anyone's (one from before such a rule).
        decided_by: Who decided, once decided.
        deadline: When the current wait ends.
        escalated: Whether the request escalated.
        ignored: Decisions that did not count, each ``<DECISION> by <decided_by> ignored: why``.
        details: The application's own answer (for its own pages).
    """

    subject_id: str
    workflow_id: str
    status: str
    approver: str = ""
    approvers: tuple[str, ...] = ()
    decided_by: str = ""
    deadline: datetime | None = None
    escalated: bool = False
    ignored: tuple[str, ...] = ()
    details: object = None

    @property
    def asked(self) -> tuple[str, ...]:
        """Who may decide as far as operators are concerned: ``approvers``, else the approver.

        A workflow that counts anyone's decision still asked one approver;
        the operator tools send only theirs.
        """
        return self.approvers or ((self.approver,) if self.approver else ())

    @property
    def asked_anyone(self) -> bool:
        """Whether anyone was asked yet (not so while ``pending`` or ``not-required``)."""
        return bool(self.asked)


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """Where a decision goes and what it answers.

    Attributes:
        topic: The input topic of decisions.
        correlation_id: The correlation id of what waits (None: the event id).
        causation_id: The event id of the request the decision answers.
    """

    topic: str
    correlation_id: str | None
    causation_id: str | None


class Pending(Protocol):
    """One approval waiting, as ``relayflow approvals`` lists it."""

    @property
    def workflow_id(self) -> str:
        """The workflow that waits."""
        ...

    def cells(self) -> tuple[str, ...]:
        """Its row, under ``Approvals.columns``."""
        ...

    def as_json(self) -> dict[str, object]:
        """Everything known of it, for scripts."""
        ...


class PendingUnanswered(Unanswered):
    """No worker answered for some waiting workflows.

    Attributes:
        workflow_ids: The workflows that did not answer.
        answered: The pending approvals of those that did.
    """

    def __init__(self, dependency: str, detail: str, workflow_ids: list[str],
                 answered: Sequence[Pending]) -> None:
        super().__init__(dependency, detail)
        self.workflow_ids = workflow_ids
        self.answered: Sequence[Pending] = answered


@runtime_checkable
class Approvals(Protocol):
    """An application's human approvals, as its operator tools need them.

    Attributes:
        subject: What waits for approval, singular (``order``), in messages.
        columns: Headings of ``Pending.cells``.
        who_may_decide: Who may decide, for help texts and refusals
            (``one of 'may decide', or <approver>/<person>``).
    """

    @property
    def subject(self) -> str: ...  # noqa: D102 - the class docstring says it

    @property
    def columns(self) -> tuple[str, ...]: ...  # noqa: D102

    @property
    def who_may_decide(self) -> str: ...  # noqa: D102

    async def pending(self, client: Client, *, task_queue: str | None,
                      seconds: float | None) -> list[Pending]:
        """What waits for a decision now, oldest first.

        Args:
            client: Connected Temporal client.
            task_queue: Only workflows on this task queue (None: all).
            seconds: Bound of each workflow's query (None: the server's).

        Raises:
            PendingUnanswered: Some workflows' queries found no worker.
        """
        ...

    async def status(self, client: Client, subject_id: str, *,
                     seconds: float) -> ApprovalStatus:
        """Where ``subject_id``'s approval stands (its workflow may have ended).

        Raises:
            NotFound: There is no such subject.
            relayflow.operate.errors.Unanswered: No worker answered within ``seconds``.
        """
        ...

    def may_decide(self, decided_by: str, asked: Sequence[str]) -> bool:
        """Whether the workflow counts a decision by ``decided_by`` when ``asked`` were asked."""
        ...

    def decision_event(self, subject_id: str, decision: DecisionValue, decided_by: str,
                       comment: str | None, event_id: uuid.UUID) -> Event:
        """The decision event (validated).

        Raises:
            relayflow.operate.errors.BadInput: It is not a valid event.
        """
        ...

    async def decision_context(self, client: Client, status: ApprovalStatus) -> DecisionContext:
        """Where the decision on ``status`` goes, and the ids it carries."""
        ...


def approvals_in(app: Application) -> Approvals | None:
    """The application's ``Approvals`` extension, or None."""
    return app.extension(Approvals)


def approvals_of(app: Application) -> Approvals:
    """The application's ``Approvals`` extension.

    Raises:
        NotFound: It has none; one line that says so.
    """
    found = approvals_in(app)
    if found is None:
        raise NotFound(f"application {app.name!r} has no approvals (no Approvals extension "
                       "in its Application.extensions)")
    return found


@dataclass(frozen=True, slots=True)
class PendingList:
    """What ``relayflow approvals`` lists.

    Attributes:
        approvals: The application's approvals (their ``columns``).
        pending: What waits, oldest first (of the workflows that answered).
        silent: Which workflows did not answer, if some did not.
    """

    approvals: Approvals
    pending: list[Pending]
    silent: PendingUnanswered | None = None

    @property
    def hint(self) -> str:
        """How to answer one, for the listing's title."""
        return (f"answer with relayflow decide {self.approvals.subject.upper()} "
                f"approve|reject --by WHO, WHO {self.approvals.who_may_decide}")


async def pending_approvals(settings: Settings, seconds: float) -> PendingList:
    """The configured application's pending approvals on ``settings.task_queue``.

    Raises:
        NotFound: The application has no approvals.
        Unanswered: Temporal did not answer within the bound.
    """
    approvals = approvals_of(load_application(settings.app))
    client = await connected_temporal(settings, seconds)
    try:
        async with temporal_answers(settings, listing_and_queries(seconds)):
            return PendingList(approvals, await approvals.pending(
                client, seconds=seconds, task_queue=settings.task_queue))
    except PendingUnanswered as silent:
        return PendingList(approvals, list(silent.answered), silent)
