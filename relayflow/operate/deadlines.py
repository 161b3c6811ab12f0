"""Bounded calls to the operator commands' dependencies, and what to say when one does not answer.

An operator command must never hang or, worse, show an empty answer because
something did not reply: each call to Kafka, Temporal, a worker (a workflow
query) or a metrics endpoint is bounded, and a dependency that does not
answer in time (or refuses the connection) raises ``Unanswered`` naming it.
The CLI prints the message and exits with ``EXIT_UNANSWERED``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from relayflow.config.settings import Settings
from relayflow.operate.errors import (
    EXIT_BAD_INPUT,
    EXIT_NOT_FOUND,
    EXIT_UNANSWERED,
    BadInput,
    NotFound,
    OperatorError,
    Unanswered,
)
from relayflow.runtime.bootstrap import connect_temporal

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_NOT_FOUND",
    "EXIT_UNANSWERED",
    "QUERY_GRACE",
    "BadInput",
    "NotFound",
    "OperatorError",
    "Unanswered",
    "connected_temporal",
    "kafka_answers",
    "listing_and_queries",
    "query_worker",
    "temporal_answers",
    "temporal_unanswered",
]

T = TypeVar("T")

_KAFKA_SILENT = (KafkaConnectionError, KafkaTimeoutError, NoBrokersAvailable, NodeNotReadyError,
                 RequestTimedOutError, OSError)
"""What aiokafka raises when no broker answers (not a refusal of credentials: a SettingError)."""
_TEMPORAL_SILENT = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
_QUERY_TIMED_OUT = frozenset({RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED})
"""A query's own rpc timeout comes back as CANCELLED ("Timeout expired") from the server."""
QUERY_GRACE = 1.0
"""Seconds the local guard of a query waits beyond its rpc timeout, so the server's answer wins."""


def listing_and_queries(seconds: float) -> float:
    """Bound of a block that lists workflows, then queries them (each query ``seconds``)."""
    return 2 * seconds + QUERY_GRACE


def _within(seconds: float) -> str:
    return f"did not answer within {seconds:g} s"


@contextlib.asynccontextmanager
async def _answers(dependency: str, seconds: float,
                   silent: Callable[[BaseException], bool]) -> AsyncIterator[None]:
    """Bound the block to ``seconds``; a timeout, or an error ``silent`` accepts: ``Unanswered``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise Unanswered(dependency, _within(seconds)) from None
    except Exception as error:
        if silent(error):
            raise Unanswered(dependency, f"did not answer: {_said(error)}") from None
        raise


def _said(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def kafka_answers(settings: Settings,
                  seconds: float) -> contextlib.AbstractAsyncContextManager[None]:
    """Bound a block of Kafka calls: ``Unanswered`` when no broker answers within ``seconds``.

    Refused credentials or certificates are not silence: they stay the
    ``SettingError`` ``KafkaClients`` raises.
    """
    return _answers(f"Kafka at {settings.kafka_bootstrap_servers}", seconds,
                    lambda error: isinstance(error, _KAFKA_SILENT))


def temporal_unanswered(error: BaseException) -> bool:
    """Whether ``error`` means the Temporal frontend did not answer (down, unreachable)."""
    if isinstance(error, RPCError):
        return error.status in _TEMPORAL_SILENT
    # Client.connect raises a bare RuntimeError when nothing answers at the address.
    return type(error) is RuntimeError and "connect" in str(error).lower()


def temporal_answers(settings: Settings,
                     seconds: float) -> contextlib.AbstractAsyncContextManager[None]:
    """Bound a block of Temporal calls (not queries: ``query_worker``) to ``seconds``."""
    return _answers(f"Temporal at {settings.temporal_address}", seconds, temporal_unanswered)


async def connected_temporal(settings: Settings, seconds: float) -> Client:
    """A Temporal client (``connect_temporal``), or ``Unanswered`` within ``seconds``."""
    async with temporal_answers(settings, seconds):
        # One quick retry per call: the bound above is the operator's patience, not the SDK's.
        return await connect_temporal(settings, retries=False)


async def query_worker(handle: WorkflowHandle[Any, Any], query: Callable[..., T], seconds: float,
                       *, task_queue: str = "") -> T:
    """Ask a workflow's query; ``Unanswered`` naming the worker when none answers in ``seconds``.

    A query is answered by a worker polling the workflow's task queue (the
    server only forwards it), so silence here means no worker, not no Temporal.

    Args:
        handle: The workflow.
        query: The query method (``OrderSaga.status``).
        seconds: Bound of the query.
        task_queue: The workflow's task queue, named in the message.
    """
    name = getattr(query, "__temporal_query_definition", None)
    shown = getattr(name, "name", None) or getattr(query, "__name__", "query")
    who = f"a worker (task queue {task_queue!r})" if task_queue else "a worker"
    try:
        async with asyncio.timeout(seconds + QUERY_GRACE):
            return await handle.query(query, rpc_timeout=timedelta(seconds=seconds))
    except TimeoutError:
        pass
    except RPCError as error:
        if error.status not in _QUERY_TIMED_OUT:
            raise
    raise Unanswered(who, f"did not answer the {shown!r} query of {handle.id} within "
                          f"{seconds:g} s: is a worker running?")
