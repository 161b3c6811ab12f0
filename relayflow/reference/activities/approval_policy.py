"""Approval policy: which orders need a person's decision, who decides, how long to wait.

The policy reaches the workflow through an activity so that changing the
settings never changes what a running workflow already decided: the value is
recorded in its history.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

__all__ = ["ApprovalPolicy", "ApprovalPolicyProvider"]


class ApprovalPolicy(BaseModel):
    """When approval is needed and how it escalates.

    Attributes:
        threshold_cents: Orders at or above this amount need approval.
        timeout_seconds: Wait for the first approver.
        escalation_timeout_seconds: Wait for the escalation approver.
        approver: Who decides first.
        escalation_approver: Who decides after escalation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold_cents: int = Field(ge=0)
    timeout_seconds: int = Field(gt=0)
    escalation_timeout_seconds: int = Field(gt=0)
    approver: str
    escalation_approver: str


class ApprovalPolicyProvider:
    """Serves the configured policy to workflows.

    Args:
        policy: The policy, built from settings by the worker.
    """

    def __init__(self, policy: ApprovalPolicy) -> None:
        self._policy = policy

    @activity.defn(name="approval_policy")
    async def approval_policy(self) -> ApprovalPolicy:
        """The current approval policy."""
        return self._policy
