"""The claim check on the real stack: an event over Temporal's limit flows end to end.

The bridge and worker run with a blob store: the filesystem one, and S3 (a real
versitygw process, ``devtools.versitygw``). A batch request that is
400 KB on Kafka but 2.4 MB as JSON (dead-lettered as ``oversize`` with the claim
check off: ``test_payload_size.py``) starts its workflow; the history holds a
reference, not the payload, which the client's converter resolves; the sweep
keeps the blobs while the workflow runs and for the retention after it closed,
and deletes them after. ``batches.outcomes`` takes records of 16 KiB at most here,
so a ``BatchCompleted`` listing long failed item ids goes by claim check
(``claim-check-*`` headers, the value in the store), which ``relayflow tail``
resolves; the worker keeps the sweep's Temporal Schedule, and its workflow sweeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.api.sdk.v1.external_storage_pb2 import ExternalStorageReference
from temporalio.client import WorkflowExecutionStatus

from activities.claim_check import SweepInput, SweepReport, stored_value
from devtools.versitygw import s3_server
from relayflow.config.settings import Settings
from relayflow.operate.verify import verify
from relayflow.reference.app import APP
from relayflow.reference.events import BatchCompleted, BatchRequested
from relayflow.reference.topics import BATCHES_OUTCOMES, BATCHES_REQUESTS, ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.claim_check import claim_check_schedule_id
from relayflow.runtime.clients import claim_check
from relayflow.temporal.claim_check import sweep
from schemas import Inbound
from schemas.framing import to_record
from schemas.headers import (
    AVRO_CONTENT_TYPE,
    DLQ_ERROR,
    DLQ_REASON,
    EVENT_TYPE,
    ClaimCheckReference,
)
from schemas.topics import dlq_topic
from tests.helpers.payload_sizes import (
    LARGE_LIMIT,
    five_mib_batch,
    five_mib_order,
    large_records,
    send_large,
    topic_limit,
)
from tests.helpers.support import KafkaProbe, as_json, cli, kafka_probe
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CODEC = APP.codec()
_REFERENCE_TYPE = ExternalStorageReference.DESCRIPTOR.full_name.encode()
ITEM_SECONDS, ITEMS = 0.5, 120
"""One chunk of 120 items at 0.5 s each: the batch runs for a minute unless terminated."""
OUTCOME_LIMIT = 16 * 1024
"""``max.message.bytes`` of ``batches.outcomes`` here: progress fits, a long failure list not."""


@pytest.fixture(scope="module", params=["file", "s3"])
async def claim_checked(request: pytest.FixtureRequest, relayflow_stack: Settings,
                        tmp_path_factory: pytest.TempPathFactory,
                        ) -> AsyncIterator[tuple[Settings, KafkaProbe]]:
    """Bridge and worker with the filesystem store, or S3 (a real versitygw process)."""
    root = tmp_path_factory.mktemp("claim-check")
    with contextlib.ExitStack() as stack:
        if request.param == "file":
            store: dict[str, Any] = {"claim_check_dir": root}
        else:
            s3 = stack.enter_context(s3_server(relayflow_stack, root))
            store = {"claim_check_s3_endpoint": s3.endpoint, "claim_check_s3_bucket": s3.bucket,
                     "claim_check_s3_access_key": s3.access_key,
                     "claim_check_s3_secret_key": SecretStr(s3.secret_key)}
        # Items take a while, so the batch is surely still running at the first sweep.
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        monkeypatch.setenv("RELAYFLOW_BATCH_ITEM_WORK_SECONDS", str(ITEM_SECONDS))
        async with large_records(relayflow_stack), topic_limit(
                relayflow_stack, ORDERS_EVENTS, LARGE_LIMIT), topic_limit(
                relayflow_stack, BATCHES_OUTCOMES, OUTCOME_LIMIT), relayflow_running(
                relayflow_stack, max_payload_bytes=LARGE_LIMIT, **store) as settings, kafka_probe(
                settings, [BATCHES_OUTCOMES, dlq_topic(BATCHES_REQUESTS),
                           dlq_topic(ORDERS_EVENTS)]) as probe:
            yield settings, probe


async def test_a_batch_over_temporals_limit_flows_with_the_claim_check(
        claim_checked: tuple[Settings, KafkaProbe]) -> None:
    settings, probe = claim_checked
    driver = claim_check(settings)
    assert driver is not None
    batch_id = f"cc-{uuid.uuid4().hex[:8]}"
    large = "item-" + "\x01" * 400_000  # six bytes each as JSON: 2.4 MB for Temporal
    items = (large, *(f"item-{i}" for i in range(2, ITEMS + 1)))
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=batch_id, items=items, chunk_size=ITEMS)
    await probe.send_record(BATCHES_REQUESTS, to_record(event, CODEC))

    client = await connect_temporal(settings)
    handle = client.get_workflow_handle(f"batch-{batch_id}")
    deadline = asyncio.get_running_loop().time() + 60
    while not [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}'")]:
        assert not [r for r in probe.seen if r.key == batch_id.encode()], "dead-lettered"
        assert asyncio.get_running_loop().time() < deadline, "the batch never started"
        await asyncio.sleep(0.5)

    # The history carries a reference to the blob, not the 2.4 MB argument.
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [argument] = started.input.payloads
    assert argument.metadata["messageType"] == _REFERENCE_TYPE
    assert argument.ByteSize() < 1024
    assert argument.external_payloads[0].size_bytes > 2_000_000
    # ...which the client's converter (the worker's too) resolves to the event.
    [inbound] = await client.data_converter.decode([argument], [Inbound[BatchRequested]])
    assert inbound.event == event

    store = driver.blobs
    blobs = {name for name, _ in store.list("blobs")}
    assert blobs, "no blob stored"
    [marker] = [name for name, _ in store.list("refs") if name.startswith(f"refs/{handle.id}/")]
    own_blob = f"blobs/{marker.rsplit('/', 1)[1]}"
    assert own_blob in blobs

    def kept() -> bool:
        names = {name for name, _ in [*store.list("refs"), *store.list("blobs")]}
        return {marker, own_blob} <= names

    # Retention: kept while it runs and for the retention after it closed, then deleted.
    await sweep(client, store, timedelta(hours=1), now=datetime.now(UTC) + timedelta(hours=2))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert kept(), "a running workflow's blob was swept"
    await handle.terminate("claim-check test: the retention is what is tested next")
    await sweep(client, store, timedelta(hours=1))
    assert kept(), "a blob was swept before its retention ran out"
    # The operator's command, with a retention of 0.36 s run out.
    await asyncio.sleep(1)
    swept = as_json(await cli(settings, "claim-check", "sweep", "--output", "json",
                              RELAYFLOW_CLAIM_CHECK_RETENTION_HOURS="0.0001"))
    assert swept["blobs"] >= 1
    assert not kept()
    assert list(store.list("blobs")) == []  # the children's and activities' blobs too


async def test_a_five_mib_batch_request_starts_its_workflow_with_a_reference(
        claim_checked: tuple[Settings, KafkaProbe]) -> None:
    settings, probe = claim_checked
    batch_id = f"cc5-{uuid.uuid4().hex[:8]}"
    size = await send_large(settings, five_mib_batch(batch_id))
    assert size > 5 * 1024 * 1024
    client = await connect_temporal(settings)
    handle = client.get_workflow_handle(f"batch-{batch_id}")
    for _ in range(120):
        if [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}'")]:
            break
        assert not [r for r in probe.seen if r.key == batch_id.encode()], "dead-lettered"
        await asyncio.sleep(0.5)
    else:
        pytest.fail("the 5 MiB batch never started")
    history = await handle.fetch_history()
    [argument] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert argument.metadata["messageType"] == _REFERENCE_TYPE
    assert argument.external_payloads[0].size_bytes > size
    await handle.terminate("claim-check test done")


async def test_a_five_mib_order_is_an_invalid_event_with_the_claim_check(
        claim_checked: tuple[Settings, KafkaProbe]) -> None:
    # No valid order is 5 MiB (at most 1000 lines): decoded, it fails validation, and is
    # dead-lettered for that before any Temporal call (without the claim check: oversize).
    settings, probe = claim_checked
    order_id = f"cc5o-{uuid.uuid4().hex[:8]}"
    size = await send_large(settings, five_mib_order(order_id), ORDERS_EVENTS)
    assert size > 5 * 1024 * 1024
    [dead] = await probe.wait_for(lambda r: r.key == order_id.encode())
    assert dead.topic == dlq_topic(ORDERS_EVENTS)
    headers = dict(dead.headers)
    assert headers[DLQ_REASON] == b"invalid-event"
    assert "items has 26000 items, at most 1000" in headers[DLQ_ERROR].decode()
    client = await connect_temporal(settings)
    assert [w async for w in client.list_workflows(f"WorkflowId = 'order-{order_id}'")] == []

async def test_an_outcome_too_large_for_its_topic_goes_by_claim_check(
        claim_checked: tuple[Settings, KafkaProbe]) -> None:
    settings, probe = claim_checked
    driver = claim_check(settings)
    assert driver is not None
    batch_id = f"cco-{uuid.uuid4().hex[:8]}"
    failing = tuple(f"bad-{i}-" + "x" * 4000 for i in range(8))  # 32 KB of failed ids
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=batch_id, items=failing)
    await probe.send_record(BATCHES_REQUESTS, to_record(event, CODEC))
    completed = BatchCompleted.avro_name.encode()
    found = await probe.wait_for(lambda r: r.key == batch_id.encode()
                                 and dict(r.headers).get(EVENT_TYPE) == completed)
    assert found, "no BatchCompleted on batches.outcomes"
    [record] = found
    assert record.value == b""  # empty, not a tombstone
    reference = ClaimCheckReference.from_kafka(record.headers)
    assert reference is not None
    assert reference.size > OUTCOME_LIMIT
    assert reference.content_type == AVRO_CONTENT_TYPE
    outcome = CODEC.decode(stored_value(driver.blobs, reference))
    assert isinstance(outcome, BatchCompleted)
    assert sorted(outcome.failed_item_ids) == sorted(failing)

    # relayflow tail fetches it from the store and shows the event.
    tailed = await cli(settings, "tail", BATCHES_OUTCOMES, "--key", batch_id, "--output", "json")
    assert tailed.exit_code == 0, tailed.output
    shown = [json.loads(line) for line in tailed.stdout.splitlines() if line.strip()]
    [as_tailed] = [r for r in shown if r["event_type"] == BatchCompleted.avro_name]
    assert as_tailed["claim_check"]["key"] == reference.key
    assert sorted(as_tailed["event"]["failed_item_ids"]) == sorted(failing)

    # relayflow verify counts it: the batch has its one terminal outcome.
    report = await verify(settings, key_prefix=batch_id)
    assert report.ok, report.summary()
    assert report.settled == {"BatchCompleted": 1}

    # Kept for the outcome retention from when it was stored, whatever its workflow does.
    client = await connect_temporal(settings)
    hour = timedelta(hours=1)
    later = datetime.now(UTC) + timedelta(minutes=30)
    await sweep(client, driver.blobs, hour, outcome_retention=hour, now=later)
    assert driver.blobs.get(reference.key)
    await sweep(client, driver.blobs, timedelta(days=30), outcome_retention=hour,
                now=later + hour)
    with pytest.raises(FileNotFoundError):
        driver.blobs.get(reference.key)


async def test_the_worker_keeps_the_sweeps_schedule_and_its_workflow_sweeps(
        claim_checked: tuple[Settings, KafkaProbe]) -> None:
    settings, _ = claim_checked
    driver = claim_check(settings)
    assert driver is not None
    client = await connect_temporal(settings)
    schedule = await client.get_schedule_handle(
        claim_check_schedule_id(settings.task_queue)).describe()
    [interval] = schedule.schedule.spec.intervals
    assert interval.every == timedelta(seconds=settings.claim_check_sweep_seconds)
    action = schedule.schedule.action
    assert action.workflow == "relayflow.SweepClaimCheck"  # type: ignore[attr-defined]
    [argument] = await client.data_converter.decode(
        action.args, [SweepInput])  # type: ignore[attr-defined]
    assert argument == SweepInput(
        retention_hours=settings.claim_check_retention_hours,
        outcome_retention_hours=settings.claim_check_outcome_retention_hours)

    # Orphans (blobs no marker names: a redelivery's second ciphertext) and an old outcome.
    orphans = [f"blobs/{i:064x}" for i in range(40)]
    for name in [*orphans, f"outcomes/{1:064x}"]:
        driver.blobs.put(name, b"orphan")
    await asyncio.sleep(1)
    report = await client.execute_workflow(
        "relayflow.SweepClaimCheck", SweepInput(retention_hours=0.0002,
                                                outcome_retention_hours=0.0002),
        id=f"cc-sweep-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue,
        result_type=SweepReport, execution_timeout=timedelta(minutes=2))
    assert report.blobs >= len(orphans)
    assert report.outcomes >= 1
    left = {name for name, _ in [*driver.blobs.list("blobs"), *driver.blobs.list("outcomes")]}
    assert not left & {*orphans, f"outcomes/{1:064x}"}
