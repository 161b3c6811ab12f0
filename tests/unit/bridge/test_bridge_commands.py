"""Classification of what Temporal's client raises: transient (retry) or permanent (DLQ)."""

from __future__ import annotations

import pytest
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import Message
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure, NotFoundFailure
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bridge.commands import classify_temporal_error
from bridge.failures import PermanentFailure, TransientFailure
from bridge.routes import Action


def rpc(status: RPCStatusCode, message: str = "x", detail: Message | None = None) -> RPCError:
    """An RPCError as the client builds it, with the server's error detail when given."""
    details = []
    if detail is not None:
        packed = AnyProto()
        packed.Pack(detail)
        details.append(packed)
    raw = GrpcStatus(code=status.value, message=message, details=details).SerializeToString()
    return RPCError(message, status, raw)


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
     RPCStatusCode.ABORTED, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN,
     RPCStatusCode.CANCELLED, RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED],
)
def test_outages_overload_and_deployment_problems_are_transient(status: RPCStatusCode) -> None:
    assert isinstance(classify_temporal_error(rpc(status), Action.START), TransientFailure)


def test_unknown_namespace_blocks_instead_of_dead_lettering_everything() -> None:
    error = rpc(RPCStatusCode.NOT_FOUND, "Namespace x is not found.", NamespaceNotFoundFailure())
    assert isinstance(classify_temporal_error(error, Action.CANCEL), TransientFailure)


def test_missing_workflow_is_permanent() -> None:
    error = rpc(RPCStatusCode.NOT_FOUND, "workflow not found for ID: o-1", NotFoundFailure())
    failure = classify_temporal_error(error, Action.SIGNAL)
    assert isinstance(failure, PermanentFailure)
    assert failure.reason == "target-not-found"


@pytest.mark.parametrize(
    "status", [RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.ALREADY_EXISTS,
               RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.UNIMPLEMENTED],
)
def test_refusals_are_permanent(status: RPCStatusCode) -> None:
    failure = classify_temporal_error(rpc(status, "request refused"), Action.START)
    assert isinstance(failure, PermanentFailure)
    assert failure.reason == "rejected"
    assert status.name in str(failure)


def test_signal_with_start_on_a_closed_workflow_is_target_closed() -> None:
    error = WorkflowAlreadyStartedError("order-1", "OrderSaga")
    failure = classify_temporal_error(error, Action.SIGNAL_WITH_START)
    assert isinstance(failure, PermanentFailure)
    assert failure.reason == "target-closed"


def test_client_side_timeout_is_transient() -> None:
    assert isinstance(classify_temporal_error(TimeoutError(), Action.START), TransientFailure)


def test_anything_else_is_an_internal_error_for_the_dlq() -> None:
    failure = classify_temporal_error(TypeError("cannot serialize"), Action.START)
    assert isinstance(failure, PermanentFailure)
    assert failure.reason == "internal-error"
    assert "TypeError" in str(failure)
