"""Entity routes through ``TemporalCommands`` on Temporal's test server: a batched
signal-with-start creates the entity, and a key whose entity closed comes back
(``IdReuse.AFTER_CLOSE``) or is refused (``IdReuse.NEVER``)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.outcomes import PublishOutcomeInput, PublishOutcomeResult
from bridge.commands import TemporalCommands, _through_switches, classify_temporal_error
from bridge.decoding import Decoder
from bridge.failures import PermanentFailure, TransientFailure
from bridge.routes import Action, IdReuse, RouteTable
from relayflow import ENTITY_QUERY, EntityEnd, EntityView
from schemas.dead_letters import DlqReason
from schemas.envelope import InboundBatch
from schemas.framing import to_record
from tests.helpers.fakes import Record
from tests.helpers.tallies.app import APP, ROUTES, TALLIES_EVENTS
from tests.helpers.tallies.events import TallyAdded, added
from tests.helpers.tallies.workflows import TallyEntity
from tests.helpers.workflow_env import start_time_skipping_environment

pytestmark = pytest.mark.timeout(120)


@activity.defn(name="publish_outcome")
async def _publish(request: PublishOutcomeInput) -> PublishOutcomeResult:
    return PublishOutcomeResult(topic=request.topic, partition=0, offset=0,
                                event_id=str(request.event["event_id"]))


@pytest.fixture
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """An environment of its own: skipping time fires only these tests' timers (another
    test's workflow whose worker has gone would hold the virtual clock)."""
    async with await start_time_skipping_environment() as env:
        yield env


@pytest.fixture
async def commands(workflow_env: WorkflowEnvironment) -> AsyncIterator[TemporalCommands]:
    queue = f"entity-routes-{uuid.uuid4()}"
    async with Worker(workflow_env.client, task_queue=queue, workflows=[TallyEntity],
                      activities=[_publish]):
        yield TemporalCommands(workflow_env.client, queue)


async def _delivery(*events: TallyAdded) -> InboundBatch[TallyAdded]:
    decoder = Decoder(APP.codec(), APP.route_table(), max_payload_bytes=4096)
    inbound = []
    for offset, event in enumerate(events):
        rec = to_record(event, APP.codec())
        routed = await decoder.decode(Record(TALLIES_EVENTS, 0, offset, rec.key, rec.value,
                                             list(rec.headers)))
        inbound.append(routed.inbound)
    return InboundBatch[TallyAdded].model_validate({"events": inbound})


@pytest.mark.parametrize("reuse", [IdReuse.AFTER_CLOSE, IdReuse.NEVER])
async def test_a_closed_entity_comes_back_only_when_its_route_allows_it(
        workflow_env: WorkflowEnvironment, commands: TemporalCommands, reuse: IdReuse) -> None:
    route = dataclasses.replace(ROUTES[0], id_reuse=reuse)
    tally = f"t-{uuid.uuid4().hex[:8]}"
    assert await commands.execute(route, await _delivery(added(tally, 0), added(tally, 1))) == (
        "signalled")
    handle = workflow_env.client.get_workflow_handle(f"tally-{tally}")
    await workflow_env.sleep(TallyEntity.options.idle + timedelta(minutes=1))  # it idles out
    first = EntityEnd.model_validate(await handle.result())
    assert first.applied == 2

    later = await _delivery(added(tally, 0, amount=5))
    if reuse is IdReuse.NEVER:
        with pytest.raises(PermanentFailure) as refused:
            await commands.execute(route, later)
        assert refused.value.reason is DlqReason.TARGET_CLOSED
        return
    assert await commands.execute(route, later) == "signalled"
    view = await workflow_env.client.get_workflow_handle(f"tally-{tally}").query(
        ENTITY_QUERY, result_type=EntityView)
    assert (view.state["total"], view.applied) == (5, 1)  # a new entity, not the old one


def test_a_run_at_its_signal_limit_is_a_transient_matter() -> None:
    full = RPCError("exceeded workflow execution limit for signal events",
                    RPCStatusCode.INVALID_ARGUMENT, b"")
    assert isinstance(classify_temporal_error(full, Action.SIGNAL), TransientFailure)
    other = RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b"")
    assert isinstance(classify_temporal_error(other, Action.SIGNAL), PermanentFailure)


def test_the_tallies_table_is_valid() -> None:
    assert RouteTable(ROUTES).lookup(TALLIES_EVENTS, TallyAdded.avro_name) is ROUTES[0]


async def test_a_signal_to_a_run_continuing_as_new_is_sent_again_quietly() -> None:
    closing = RPCError("workflow operation can not be applied because workflow is closing",
                       RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    busy = RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    attempts: list[RPCError | None] = [closing, closing, None]

    async def send() -> None:
        if (error := attempts.pop(0)) is not None:
            raise error

    await _through_switches(send)
    assert attempts == []

    attempts[:] = [busy, None]
    with pytest.raises(RPCError):  # an overloaded server is the consumer's backoff's matter
        await _through_switches(send)
