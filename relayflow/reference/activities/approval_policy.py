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

The trusted approver keys (``approval_keys``) reach the workflow the same
way: the saga asks each time it screens decisions, so the registry it
verified a decision with is in its history (replay never re-reads the file),
and a key added or removed reaches sagas already waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from schemas.signatures import KeyRegistry

__all__ = [
    "ApprovalKeys",
    "ApprovalKeysRequest",
    "ApprovalPolicy",
    "ApprovalPolicyProvider",
    "ApprovalPolicyRequest",
    "ApprovalRules",
    "RegistryFile",
]

_log = logging.getLogger(__name__)


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


class ApprovalKeysRequest(BaseModel):
    """What the workflow asks for the trusted keys (read-only: idempotent by nature).

    Attributes:
        approval_id: The approval whose decisions are screened (for the log).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_id: str


class ApprovalKeys(BaseModel):
    """Which approver keys the saga trusts, and whether a decision must be signed.

    Attributes:
        required: Whether an unsigned decision is refused (``unsigned``). False
            only where ``RELAYFLOW_APPROVAL_SIGNATURES=off`` (development);
            a signed decision is verified either way.
        registry: The trusted public keys and whom each may sign for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = True
    registry: KeyRegistry = KeyRegistry()


class RegistryFile:
    """A key registry file, read again whenever it changes (rotation without a restart).

    Args:
        path: The registry file (None: no keys are trusted).
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._registry = KeyRegistry()

    def current(self) -> KeyRegistry:
        """The registry as the file says now.

        Raises:
            ValueError: The file cannot be read or is not a registry (the
                activity is retried: fix the file and the sagas go on).
        """
        if self._path is None:
            return KeyRegistry()
        with self._lock:
            stat = self._path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen != self._seen:
                self._registry = KeyRegistry.load(self._path)
                self._seen = seen
                _log.info("approval keys: %d trusted (%s)", len(self._registry.keys),
                          ", ".join(k.key_id for k in self._registry.keys))
            return self._registry


class ApprovalPolicyProvider:
    """Serves the configured policy and the trusted approver keys to workflows.

    Args:
        rules: The rules, built from settings by the worker.
        keys: The current trusted keys (default: none, signatures required).
    """

    def __init__(self, rules: ApprovalRules,
                 keys: Callable[[], ApprovalKeys] = ApprovalKeys) -> None:
        self._rules, self._keys = rules, keys

    @activity.defn(name="approval_policy")
    async def approval_policy(self, request: ApprovalPolicyRequest | None = None,
                              ) -> ApprovalPolicy:
        """The approval policy for an order in the request's currency."""
        return self._rules.policy_for(None if request is None else request.currency)

    @activity.defn(name="approval_keys")
    async def approval_keys(self, request: ApprovalKeysRequest) -> ApprovalKeys:
        """The trusted approver keys now (the saga verifies with this answer)."""
        del request  # the answer is the same for every approval
        return self._keys()
