"""The approver keys of the test session: what signs the tests' decisions, and what trusts them.

``OPERATOR`` stands for a person's or an operator's key file, ``CONSOLE``
for the console's key; both act for every approver group the tests use
(the fakes' ``approvers``/``managers`` and the reference's
``orders-approvers``/``orders-managers``). ``REGISTRY`` trusts both; the
fakes answer it to the sagas, and ``install`` points the session's workers,
``relayflow decide`` and console at them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relayflow.reference.activities.approval_policy import ApprovalKeys
from relayflow.reference.decision_signatures import sign_decision
from relayflow.reference.events import ApprovalDecided
from schemas.signatures import KeyRegistry, SigningKey

__all__ = ["CONSOLE", "GROUPS", "KEYS", "MALLORY", "OPERATOR", "REGISTRY", "install", "key_for",
           "signed"]

GROUPS = ("approvers", "managers", "orders-approvers", "orders-managers")
"""Whom the session's keys act for."""
OPERATOR = SigningKey.generate("test-operator", GROUPS)
CONSOLE = SigningKey.generate("test-console", GROUPS)
MALLORY = SigningKey.generate("test-mallory", ("mallory",))
"""A registered key of someone who is no approver: proves who, yet may not decide."""
REGISTRY = KeyRegistry(keys=(OPERATOR.trusted(), CONSOLE.trusted(), MALLORY.trusted()))
KEYS = ApprovalKeys(registry=REGISTRY)
"""What the fake ``approval_keys`` answers: both keys trusted, signatures required."""


def key_for(decided_by: str) -> SigningKey:
    """The session key that may sign for ``decided_by``: mallory's own, else the operator's."""
    return MALLORY if decided_by == "mallory" else OPERATOR


def signed(decision: ApprovalDecided, key: SigningKey | None = None) -> ApprovalDecided:
    """``decision`` signed with ``key`` (default: the session key for its ``decided_by``)."""
    return sign_decision(decision, key or key_for(decision.decided_by))


def install(folder: Path, environment: pytest.MonkeyPatch) -> dict[str, Path]:
    """Write the keys and registry to ``folder`` and name them in the environment.

    Returns:
        The ``Settings`` fields that name the signers' key files.
    """
    registry = folder / "approval-keys.json"
    registry.write_text(REGISTRY.model_dump_json(indent=2), encoding="utf-8")
    fields = {}
    for key, field in ((OPERATOR, "decision_key_file"), (CONSOLE, "console_decision_key_file")):
        path = folder / f"{key.key_id}.key"
        if not path.exists():
            key.save(path)
        environment.setenv(f"RELAYFLOW_{field.upper()}", str(path))
        fields[field] = path
    environment.setenv("RELAYFLOW_APPROVAL_KEYS", str(registry))
    return fields
