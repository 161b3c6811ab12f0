"""What an ApprovalDecided's signature covers, and every reason it does not prove a decision."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relayflow.reference.decision_signatures import (
    DECISION_TAG,
    decision_message,
    sign_decision,
    signature_problem,
)
from relayflow.reference.events import ApprovalDecided
from schemas.signatures import KeyRegistry, SigningKey, canonical_message

NOW = datetime(2026, 12, 6, 12, 0, 0, 123000, tzinfo=UTC)
GROUP = SigningKey.generate("console", ["orders-approvers"])
ANN = SigningKey.generate("ann", ["orders-approvers/ann"])
REGISTRY = KeyRegistry(keys=(GROUP.trusted(), ANN.trusted()))


def decided(**fields: Any) -> ApprovalDecided:
    return ApprovalDecided.model_validate({
        "event_id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "occurred_at": NOW,
        "approval_id": "approval-A", "order_id": "A", "decision": "APPROVED",
        "decided_by": "orders-approvers/ann", "comment": None} | fields)


def test_the_message_is_the_documented_field_list() -> None:
    signed = sign_decision(decided(comment="ok"), ANN)
    assert decision_message(signed) == canonical_message(DECISION_TAG, [
        "12345678-1234-5678-1234-567812345678", str(int(NOW.timestamp() * 1000)), "A",
        "approval-A", "APPROVED", "orders-approvers/ann", "ok", "ann"])
    assert signed.key_id == "ann"
    assert signed.signature is not None
    assert len(signed.signature) == 64


def test_a_signed_decision_by_a_key_that_acts_for_it_is_proven() -> None:
    assert signature_problem(sign_decision(decided(), ANN), REGISTRY, NOW) is None
    # A group's key (the console's) signs for any person of the group.
    assert signature_problem(sign_decision(decided(decided_by="orders-approvers/bob"), GROUP),
                             REGISTRY, NOW) is None


@pytest.mark.parametrize("change", [
    {"order_id": "B"}, {"approval_id": "approval-B"}, {"decision": "REJECTED"},
    {"decided_by": "orders-approvers/eve"}, {"comment": "x"}, {"key_id": "console"},
    {"event_id": uuid.uuid4()}, {"occurred_at": NOW + timedelta(milliseconds=1)},
])
def test_changing_any_signed_field_breaks_the_signature(change: dict[str, Any]) -> None:
    moved = sign_decision(decided(), ANN).model_copy(update=change)
    assert signature_problem(moved, REGISTRY, NOW) == "bad-signature"


def test_each_reason() -> None:
    assert signature_problem(decided(), REGISTRY, NOW) == "unsigned"
    assert signature_problem(decided(key_id="ann"), REGISTRY, NOW) == "unsigned"
    stranger = SigningKey.generate("stranger", ["orders-approvers"])
    assert signature_problem(sign_decision(decided(), stranger), REGISTRY, NOW) == "unknown-key"
    # A stranger's key under a registered id: the registered public key does not verify it.
    impostor = SigningKey.generate("ann", ["orders-approvers/ann"])
    assert signature_problem(sign_decision(decided(), impostor), REGISTRY, NOW) == \
        "bad-signature"
    # Ann's own key, for someone else: proven, but not hers to sign.
    assert signature_problem(sign_decision(decided(decided_by="orders-approvers/bob"), ANN),
                             REGISTRY, NOW) == "key-not-for-approver"
    assert signature_problem(sign_decision(decided(decided_by="orders-managers/ann"), GROUP),
                             REGISTRY, NOW) == "key-not-for-approver"
    expired = KeyRegistry(keys=(ANN.trusted(not_after=NOW),))
    assert signature_problem(sign_decision(decided(), ANN), expired, NOW) == "key-not-valid"
    early = KeyRegistry(keys=(ANN.trusted(not_before=NOW + timedelta(seconds=1)),))
    assert signature_problem(sign_decision(decided(), ANN), early, NOW) == "key-not-valid"


def test_a_signed_decision_survives_the_avro_codec_and_temporal_json() -> None:
    from relayflow.reference.app import APP  # noqa: PLC0415
    from schemas import Inbound  # noqa: PLC0415

    signed = sign_decision(decided(comment="é ok"), ANN)
    codec = APP.codec()
    assert codec.decode(codec.encode(signed)) == signed
    envelope = Inbound[ApprovalDecided].model_validate({"event": signed, "meta": {
        "event_type": signed.avro_name, "event_id": str(signed.event_id),
        "correlation_id": "c"}})
    again = Inbound[ApprovalDecided].model_validate_json(envelope.model_dump_json())
    assert signature_problem(again.event, REGISTRY, NOW) is None
