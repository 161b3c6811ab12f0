"""Signed approval decisions: what an ``ApprovalDecided`` signature covers, and its check.

The signature covers the canonical message (``schemas.signatures``) tagged
``relayflow.approvals.ApprovalDecided/v1`` of these fields, in this order:
``event_id`` (lower-case, hyphenated), ``occurred_at`` (milliseconds since
the Unix epoch, decimal, as Avro's ``timestamp-millis`` carries it),
``order_id``, ``approval_id``, ``decision``, ``decided_by``, ``comment``
(absent when null) and ``key_id``. Changing any of them (another order,
approval, verdict, person, comment or key) breaks the signature.

``signature_problem`` is pure and deterministic: the saga calls it in
workflow code with the registry its activity answered (recorded in history)
and ``workflow.now()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from relayflow.reference.events import ApprovalDecided
from schemas.signatures import KeyRegistry, SigningKey, canonical_message

__all__ = [
    "BAD_SIGNATURE",
    "DECISION_TAG",
    "KEY_NOT_FOR_APPROVER",
    "KEY_NOT_VALID",
    "UNKNOWN_KEY",
    "UNSIGNED",
    "decision_message",
    "may_decide",
    "sign_decision",
    "signature_problem",
]

DECISION_TAG = "relayflow.approvals.ApprovalDecided/v1"
"""Names the message kind and the version of its field list."""
UNSIGNED = "unsigned"
"""No ``key_id`` or no ``signature``."""
UNKNOWN_KEY = "unknown-key"
"""``key_id`` is not in the registry (never registered, or removed: revoked)."""
KEY_NOT_VALID = "key-not-valid"
"""The key is registered, but not valid now (before ``not_before`` or from ``not_after``)."""
BAD_SIGNATURE = "bad-signature"
"""The signature is not the key's signature of this decision (forged or altered)."""
KEY_NOT_FOR_APPROVER = "key-not-for-approver"
"""The key may not sign for ``decided_by`` (its ``acts_for`` does not cover it)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def may_decide(decided_by: str, approvers: Sequence[str]) -> bool:
    """Whether ``decided_by`` is one of ``approvers``, or a person of one.

    It holds when ``decided_by`` is one of ``approvers`` exactly, or names a
    person of one as ``<approver>/<person>`` (e.g. ``orders-approvers/ann``),
    so the outcome says who decided. Case matters; nothing is trimmed. The
    saga applies it to the approvers it asked, and to what a key acts for.
    """
    return any(decided_by == approver
               or (decided_by.startswith(f"{approver}/") and len(decided_by) > len(approver) + 1)
               for approver in approvers)


def decision_message(decision: ApprovalDecided) -> bytes:
    """The bytes the decision's signature covers (module docs)."""
    millis = (decision.occurred_at - _EPOCH) // timedelta(milliseconds=1)
    return canonical_message(DECISION_TAG, (
        str(decision.event_id), str(millis), decision.order_id, decision.approval_id,
        decision.decision, decision.decided_by, decision.comment, decision.key_id))


def sign_decision(decision: ApprovalDecided, key: SigningKey) -> ApprovalDecided:
    """``decision`` signed with ``key`` (its ``key_id`` set to the key's)."""
    keyed = decision.model_copy(update={"key_id": key.key_id, "signature": None})
    return keyed.model_copy(update={"signature": key.sign(decision_message(keyed))})


def signature_problem(decision: ApprovalDecided, registry: KeyRegistry,
                      at: datetime) -> str | None:
    """Why the decision is not proven by a registered key, or None when it is.

    Args:
        decision: The decision as received.
        registry: The trusted keys.
        at: The time the key must be valid at (the saga's ``workflow.now()``).

    Returns:
        ``unsigned``, ``unknown-key``, ``key-not-valid``, ``bad-signature``,
        ``key-not-for-approver``, or None.
    """
    if decision.key_id is None or decision.signature is None:
        return UNSIGNED
    key = registry.find(decision.key_id)
    if key is None:
        return UNKNOWN_KEY
    if not key.valid_at(at):
        return KEY_NOT_VALID
    if not key.verifies(decision_message(decision), decision.signature):
        return BAD_SIGNATURE
    if not may_decide(decision.decided_by, key.acts_for):
        return KEY_NOT_FOR_APPROVER
    return None
