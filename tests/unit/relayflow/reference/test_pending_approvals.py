"""The rows of ``relayflow approvals``: who may decide, and which decisions were refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relayflow.reference.pending_approvals import COLUMNS, REFUSED_SHOWN, PendingApproval
from relayflow.reference.workflows.approval import ApprovalState, RefusedDecision

SINCE = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def waiting(**fields: object) -> ApprovalState:
    return ApprovalState.model_validate({
        "required": True, "approval_id": "approval-A-1", "status": "waiting",
        "approver": "managers", "waiting_since": SINCE, "deadline": SINCE + timedelta(hours=2),
        "escalated": True, "approvers": ["approvers", "managers"]} | fields)


def refused(who: str, decision: str = "APPROVED") -> RefusedDecision:
    return RefusedDecision(event_id="e", decided_by=who, decision=decision, refused_at=SINCE,
                           reason="not among the approvers asked (approvers)")


def test_a_row_says_who_may_decide_and_until_when() -> None:
    row = dict(zip(COLUMNS, PendingApproval("order-A-1", waiting()).cells(), strict=True))
    assert row == {
        "workflow": "order-A-1", "approval id": "approval-A-1", "waiting for": "managers",
        "may decide": "approvers, managers", "escalated": "yes",
        "since (UTC)": "2026-11-25 12:00:00", "deadline (UTC)": "2026-11-25 14:00:00",
        "refused decisions": "-"}


def test_a_row_counts_refused_decisions_and_names_the_latest() -> None:
    people = [refused(f"p{n}") for n in range(REFUSED_SHOWN + 1)]
    people[-1] = refused("mallory", "REJECTED")
    cells = PendingApproval("order-A-1", waiting(refused=people)).cells()
    assert cells[COLUMNS.index("refused decisions")] == (
        f"{REFUSED_SHOWN + 1}: ..., p1 (APPROVED), p2 (APPROVED), mallory (REJECTED)")


def test_a_saga_from_before_the_approver_rule_names_the_approver_the_tools_answer_for() -> None:
    # Such a saga would count anyone's decision, but decide and the console send only
    # the approver's: the listing says who that is, not "anyone".
    cells = PendingApproval("order-A-1", waiting(approvers=[])).cells()
    assert cells[COLUMNS.index("may decide")] == "managers"
