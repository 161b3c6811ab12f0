"""Approval policy: which orders need a person's decision, who decides, how long to wait.

The policy reaches the workflow through an activity so that changing the
settings never changes what a running workflow already decided: the value is
recorded in its history. The activity is asked for the order's currency and
answers that currency's threshold, so a change of how thresholds are chosen is
a change of an activity's result, which replay never recomputes.

Thresholds are per currency, in that currency's ``amount_cents`` units
(``ApprovalRules.thresholds_cents``); amounts are never converted. A
currency without a threshold, or a request naming none (an activity task
scheduled by a workflow of release 0.1.0, before the request existed),
gets threshold 0: every order needs approval.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

__all__ = ["ApprovalPolicy", "ApprovalPolicyProvider", "ApprovalPolicyRequest", "ApprovalRules"]


class ApprovalPolicy(BaseModel):
    """When approval is needed and how it escalates, for one order.

    Attributes:
        threshold_cents: Orders at or above this amount need approval (in the
            order's currency; 0: every order).
        timeout_seconds: Wait for the first approver.
        escalation_timeout_seconds: Wait for the escalation approver.
        approver: Who decides first.
        escalation_approver: Who decides after escalation.
        currency: The currency ``threshold_cents`` is in (None: answered to a
            workflow that named none, as release 0.1.0's did).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold_cents: int = Field(ge=0)
    timeout_seconds: int = Field(gt=0)
    escalation_timeout_seconds: int = Field(gt=0)
    approver: str
    escalation_approver: str
    currency: str | None = None


class ApprovalPolicyRequest(BaseModel):
    """What the workflow asks the policy about.

    Attributes:
        currency: The order's ISO 4217 currency code.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str


class ApprovalRules(BaseModel):
    """The configured policy: thresholds per currency, approvers and waits.

    Attributes:
        thresholds_cents: ISO 4217 code → orders in that currency at or above
            this amount (its minor units) need approval. A currency not here:
            every order in it needs approval.
        timeout_seconds: Wait for the first approver.
        escalation_timeout_seconds: Wait for the escalation approver.
        approver: Who decides first.
        escalation_approver: Who decides after escalation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    thresholds_cents: dict[str, int]
    timeout_seconds: int = Field(gt=0)
    escalation_timeout_seconds: int = Field(gt=0)
    approver: str
    escalation_approver: str

    def policy_for(self, currency: str | None) -> ApprovalPolicy:
        """The policy for an order in ``currency`` (None: not known, so the strictest)."""
        threshold = 0 if currency is None else self.thresholds_cents.get(currency, 0)
        return ApprovalPolicy(threshold_cents=threshold, timeout_seconds=self.timeout_seconds,
                              escalation_timeout_seconds=self.escalation_timeout_seconds,
                              approver=self.approver, escalation_approver=self.escalation_approver,
                              currency=currency)


class ApprovalPolicyProvider:
    """Serves the configured policy to workflows.

    Args:
        rules: The rules, built from settings by the worker.
    """

    def __init__(self, rules: ApprovalRules) -> None:
        self._rules = rules

    @activity.defn(name="approval_policy")
    async def approval_policy(self, request: ApprovalPolicyRequest | None = None,
                              ) -> ApprovalPolicy:
        """The approval policy for an order in the request's currency."""
        return self._rules.policy_for(None if request is None else request.currency)
