"""Deciding an approval (``relayflow.operate.decide``): one set of rules, for CLI and console.

The application's side is a fake of relayflow's own ``Approvals`` interface
holding one approval's status; the reference application's real extension
supplies the saga's rule (``may_decide``) and the event.
"""

from __future__ import annotations

import stat
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from examples.tickets.app import APP as TICKETS
from relayflow.cli.main import app as cli
from relayflow.kafka.sends import Delivered
from relayflow.operate.approvals import (
    Approvals,
    ApprovalStatus,
    DecisionContext,
    DecisionValue,
    Pending,
    approvals_of,
)
from relayflow.operate.decide import (
    NoSuchApproval,
    NotWaiting,
    NotYours,
    Person,
    decide_approval,
)
from relayflow.operate.errors import EXIT_BAD_INPUT, EXIT_NOT_FOUND, BadInput, NotFound
from relayflow.operate.signing import SignedDecisions
from relayflow.reference.app import APP
from relayflow.reference.approvals import ORDER_APPROVALS
from relayflow.reference.decision_signatures import signature_problem
from relayflow.reference.events import ApprovalDecided
from schemas.models import Event
from schemas.signatures import KeyRegistry, SigningKey

CLIENT = cast("Client", object())
"""Never used by the fake: every Temporal answer comes from the fake's status."""
DEADLINE = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def waiting(**fields: Any) -> ApprovalStatus:
    return replace(ApprovalStatus("A-1", "order-A-1", "waiting", approver="approvers",
                                  approvers=("approvers",), deadline=DEADLINE), **fields)


@dataclass
class FakeApprovals:
    """One order's approval; what was asked and sent is recorded."""

    states: list[ApprovalStatus]
    asked: int = 0
    sent: list[tuple[Event, str, str | None, str | None]] = field(default_factory=list)
    subject = "order"
    columns = ("workflow",)
    who_may_decide = "an approver asked"

    async def pending(self, client: Client, *, task_queue: str | None,
                      seconds: float | None) -> list[Pending]:
        del client, task_queue, seconds
        return []

    async def status(self, client: Client, subject_id: str, *,
                     seconds: float) -> ApprovalStatus:
        del client, seconds
        if subject_id != "A-1":
            raise NotFound("no workflow order-" + subject_id)
        found = self.states[min(self.asked, len(self.states) - 1)]
        self.asked += 1
        return found

    def may_decide(self, decided_by: str, asked: Sequence[str]) -> bool:
        return ORDER_APPROVALS.may_decide(decided_by, asked)

    def decision_event(self, subject_id: str, decision: DecisionValue, decided_by: str,
                       comment: str | None, event_id: uuid.UUID) -> Event:
        return ORDER_APPROVALS.decision_event(subject_id, decision, decided_by, comment,
                                              event_id)

    async def decision_context(self, client: Client, status: ApprovalStatus) -> DecisionContext:
        del client, status
        return DecisionContext("approvals.decisions", "corr-1", "cause-1")

    async def deliver(self, event: Event, topic: str, correlation_id: str | None,
                      causation_id: str | None) -> Delivered:
        self.sent.append((event, topic, correlation_id, causation_id))
        return Delivered(topic, 0, len(self.sent), event.key, str(event.event_id))


async def decide(fake: FakeApprovals, by: str | Person, **options: Any) -> Any:
    options = {"subject_id": "A-1", "decision": "APPROVED"} | options
    return await decide_approval(fake, CLIENT, fake.deliver, by=by, seconds=1.0, **options)


def test_the_fake_and_the_reference_extension_are_approvals() -> None:
    assert isinstance(FakeApprovals([]), Approvals)
    assert approvals_of(APP) is cast("Approvals", ORDER_APPROVALS)


def test_an_application_without_approvals_says_so_in_one_line() -> None:
    with pytest.raises(NotFound) as missing:
        approvals_of(TICKETS)
    assert str(missing.value) == ("application 'tickets' has no approvals (no Approvals "
                                  "extension in its Application.extensions)")


@pytest.mark.parametrize("command", [["decide", "T-1", "approve", "--by", "ann"],
                                     ["approvals"]])
def test_the_cli_with_an_application_without_approvals_says_so_in_one_line(
        command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_APP", "examples.tickets.app:APP")
    monkeypatch.setenv("RELAYFLOW_TEMPORAL_ADDRESS", "127.0.0.1:9")  # never reached
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == EXIT_NOT_FOUND, result.output
    assert result.stderr.strip().splitlines() == [
        ("relayflow: application 'tickets' has no approvals (no Approvals extension in its "
         "Application.extensions)")]


async def test_an_approver_asked_decides_with_the_ids_of_what_it_answers() -> None:
    fake = FakeApprovals([waiting()])
    decided = await decide(fake, "approvers/ann", comment="  fine  ")
    [(event, topic, correlation, causation)] = fake.sent
    assert (topic, correlation, causation) == ("approvals.decisions", "corr-1", "cause-1")
    assert event is decided.event
    assert event.model_dump() | {"event_id": None, "occurred_at": None} == {
        "event_id": None, "occurred_at": None, "approval_id": "approval-A-1", "order_id": "A-1",
        "decision": "APPROVED", "decided_by": "approvers/ann", "comment": "fine",
        "key_id": None, "signature": None}
    assert decided.outcome == "sent"


async def test_a_person_decides_as_the_group_asked_now_and_is_watched_counting() -> None:
    escalated = waiting(approver="managers", approvers=("approvers", "managers"),
                        escalated=True)
    fake = FakeApprovals([escalated, escalated,
                          replace(escalated, status="approved", decided_by="managers/kim")])
    kim = Person("kim", frozenset({"approvers", "managers"}))
    decided = await decide(fake, kim, event_id=uuid.UUID(int=7), settle_seconds=5)
    assert (decided.outcome, decided.message) == ("counted", "Approved as managers/kim.")
    assert fake.sent[0][0].event_id == uuid.UUID(int=7)


async def test_a_decision_someone_else_took_first_is_ignored() -> None:
    fake = FakeApprovals([waiting(), replace(waiting(), status="rejected",
                                             decided_by="approvers/zoe")])
    decided = await decide(fake, "approvers/ann", settle_seconds=5)
    assert decided.outcome == "ignored"
    assert "rejected by approvers/zoe before your decision arrived" in decided.message


async def test_a_decision_the_workflow_refused_says_why_and_that_it_still_waits() -> None:
    note = "APPROVED by approvers/ann ignored: unsigned: decisions must be signed"
    fake = FakeApprovals([waiting(), waiting(ignored=(note,))])
    decided = await decide(fake, "approvers/ann", settle_seconds=5)
    assert decided.outcome == "refused"
    assert decided.message == ("Not counted: unsigned: decisions must be signed. "
                               "The order still waits.")


@pytest.mark.parametrize(("by", "status"), [
    ("mallory", waiting()),
    ("approvers-x/ann", waiting()),
    ("approvers/", waiting()),
    # A saga from before the approver rule counts anyone; operators send only its approver's.
    ("managers/max", waiting(approvers=())),
    (Person("bob", frozenset({"returns"})), waiting()),
])
async def test_only_someone_asked_may_decide_and_nothing_is_sent_otherwise(
        by: str | Person, status: ApprovalStatus) -> None:
    fake = FakeApprovals([status])
    with pytest.raises(NotYours) as refused:
        await decide(fake, by)
    assert refused.value.exit_code == EXIT_BAD_INPUT
    assert refused.value.outcome == "not-yours"
    assert fake.sent == []
    if isinstance(by, Person):
        assert refused.value.message == ("bob is not among the approvers of order A-1 "
                                         "(approvers): nothing was sent.")
    else:
        assert str(refused.value).startswith(f"{by!r} may not decide order 'A-1': it counts "
                                             "decisions by approvers")


async def test_the_approver_of_a_saga_from_before_the_rule_decides() -> None:
    fake = FakeApprovals([waiting(approvers=())])
    await decide(fake, "approvers/ann")
    assert len(fake.sent) == 1


@pytest.mark.parametrize(("status", "outcome", "message"), [
    (waiting(status="approved", decided_by="approvers/zoe"), "already-decided",
     "Already approved by approvers/zoe: nothing was sent."),
    (waiting(status="timed-out"), "timed-out",
     ("Too late: nobody decided before the deadline (2026-11-25 14:00:00 UTC) and the order "
      "failed; nothing was sent.")),
    (waiting(status="not-required", approver="", approvers=()), "not-waiting",
     "This order is not waiting for a decision (approval not-required): nothing was sent."),
])
async def test_a_decision_that_cannot_count_is_not_sent(
        status: ApprovalStatus, outcome: str, message: str) -> None:
    fake = FakeApprovals([status])
    with pytest.raises(NotWaiting) as refused:
        await decide(fake, "approvers/ann")
    assert (refused.value.outcome, refused.value.message) == (outcome, message)
    assert refused.value.exit_code == EXIT_NOT_FOUND
    assert str(refused.value) == f"order 'A-1' has no pending approval: {message}"
    assert fake.sent == []


async def test_an_unknown_order_and_bad_input_send_nothing() -> None:
    fake = FakeApprovals([waiting()])
    with pytest.raises(NoSuchApproval) as unknown:
        await decide(fake, "approvers/ann", subject_id="B-2")
    assert unknown.value.message == "There is no order 'B-2'."
    assert str(unknown.value) == "There is no order 'B-2' (no workflow order-B-2)."
    for problem, options in {
        "decision must be APPROVED or REJECTED": {"decision": "MAYBE"},
        "comment: control characters": {"comment": "ok\x00\x1b[2J"},
        "at most 2000 characters": {"comment": "x" * 2001},
    }.items():
        with pytest.raises(BadInput, match=problem):
            await decide(fake, "approvers/ann", **options)
    assert fake.asked == 0  # bad input: nothing was asked
    assert fake.sent == []


@dataclass
class FakeSignedApprovals(FakeApprovals):
    """Approvals whose decisions are signed, the reference app's way."""

    def signed(self, event: Event, key: SigningKey) -> Event:
        return ORDER_APPROVALS.signed(event, key)

    def dev_keys(self, data_dir: Path) -> list[Path]:
        del data_dir
        raise AssertionError("not for deciding")


async def test_with_a_key_the_decision_is_signed_and_proves_who_decided() -> None:
    fake = FakeSignedApprovals([waiting()])
    key = SigningKey.generate("ann-2026", ["approvers/ann"])
    decided = await decide(fake, "approvers/ann", key=key)
    [(event, _, _, _)] = fake.sent
    assert isinstance(event, ApprovalDecided)
    assert event is decided.event
    assert event.key_id == "ann-2026"
    registry = KeyRegistry(keys=(key.trusted(),))
    assert signature_problem(event, registry, datetime.now(UTC)) is None


async def test_a_key_for_an_application_that_signs_nothing_sends_nothing() -> None:
    fake = FakeApprovals([waiting()])
    with pytest.raises(BadInput, match="not signed"):
        await decide(fake, "approvers/ann", key=SigningKey.generate("k", ["approvers"]))
    assert (fake.sent, fake.asked) == ([], 0)


def test_the_reference_approvals_sign_and_make_dev_keys_once(tmp_path: Path) -> None:
    assert isinstance(ORDER_APPROVALS, SignedDecisions)
    made = ORDER_APPROVALS.dev_keys(tmp_path)
    again = ORDER_APPROVALS.dev_keys(tmp_path)
    assert made == again
    assert [p.name for p in made] == ["approver.key", "console.key", "approval-keys.json"]
    registry = KeyRegistry.load(made[-1])
    operator = SigningKey.load(made[0])
    assert [k.key_id for k in registry.keys] == ["dev-operator", "dev-console"]
    assert registry.find("dev-operator") == operator.trusted()
    console = registry.find("dev-console")
    assert console is not None
    assert console.acts_for == ("orders-approvers", "orders-managers")
    assert stat.S_IMODE(made[0].stat().st_mode) == 0o600
