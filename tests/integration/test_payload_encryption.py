"""Payload encryption on the real stack: histories hold ciphertext, the codec server reads them.

Bridge and worker run with a keys file (an old key and the active one). Two
sagas run through Kafka: one completes, one fails out of stock (its failure
message quotes the SKU). Their histories, fetched by a client without the
codec, hold none of the order's data; the real ``relayflow codec-server``
process, called as the ``temporal`` CLI calls it, gives the clear payloads
back, and ``temporal workflow show --codec-endpoint`` shows them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import History

from relayflow.config.settings import Settings
from relayflow.reference.activities.store import OUT_OF_STOCK_PREFIX
from relayflow.reference.app import APP
from relayflow.reference.events import OrderCompleted, OrderFailed, OrderPlaced
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.temporal.payload_codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    new_key_entry,
    payload_codec,
)
from relayflow.testing import app_kafka
from tests.helpers.support import order_placed
from tests.integration.running import codec_server_process, relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = f"tok-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
async def encrypted(relayflow_stack: Settings,
                    tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    """Bridge and worker encrypting with the newest of two keys from a keys file."""
    keys_file = tmp_path_factory.mktemp("keys") / "payload-keys"
    keys_file.write_text(f"{new_key_entry('retired-2025')}\n{new_key_entry('active-2026')}\n")
    keys_file.chmod(0o600)
    async with relayflow_running(relayflow_stack, payload_encryption_keys_file=keys_file,
                                 codec_server_token=TOKEN) as settings:
        yield settings


@dataclass(frozen=True)
class Saga:
    order: OrderPlaced
    history: History
    """As stored on the server, read by a client without the codec."""

    @property
    def secrets(self) -> list[str]:
        """The order's data that must not be readable in the history."""
        return [self.order.customer_id, self.order.items[0].sku,
                f'"order_id":"{self.order.order_id}"']


def _order(sku: str) -> OrderPlaced:
    unique = uuid.uuid4().hex[:8]
    return order_placed(sku=f"{sku}{unique}").model_copy(
        update={"customer_id": f"cust-{unique}"})


async def _history(encrypted: Settings, order_id: str) -> History:
    # Everything but the keys: this client reads what the server stores.
    plain = encrypted.model_copy(update={"payload_encryption_keys_file": None})
    assert payload_codec(plain) is None
    client = await connect_temporal(plain)
    history = await client.get_workflow_handle(f"order-{order_id}").fetch_history()
    return History(events=history.events)


@pytest.fixture(scope="module")
async def sagas(encrypted: Settings) -> list[Saga]:
    completed, failed = _order("SKU-"), _order(OUT_OF_STOCK_PREFIX)
    async with app_kafka(encrypted, APP) as kafka:
        for order in (completed, failed):
            await kafka.send(order)
        await kafka.wait_for(OrderCompleted, key=completed.order_id, timeout=60)
        outcome = await kafka.wait_for(OrderFailed, key=failed.order_id, timeout=60)
    assert outcome.reason == "out_of_stock"
    return [Saga(order, await _history(encrypted, order.order_id))
            for order in (completed, failed)]


def _payloads(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in ``message`` (inputs, results, signals, failures, headers)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    yield from _payloads(item)
        elif field.is_repeated:
            for item in value:
                yield from _payloads(item)
        else:
            yield from _payloads(value)


async def test_the_stored_history_holds_no_order_data(sagas: list[Saga]) -> None:
    for saga in sagas:
        payloads = list(_payloads(saga.history))
        assert len(payloads) >= 5, saga.history  # input, activity arguments and results, ...
        for payload in payloads:
            assert payload.metadata["encoding"] == ENCRYPTED_ENCODING, payload
            assert payload.metadata[KEY_ID_METADATA] == b"active-2026"
        stored = saga.history.SerializeToString()
        as_json = json_format.MessageToJson(saga.history)
        for secret in saga.secrets:
            assert secret.encode() not in stored, secret
            assert secret not in as_json, secret


async def test_the_failure_message_is_encrypted_too(sagas: list[Saga]) -> None:
    failed = sagas[1]
    failures = [event.activity_task_failed_event_attributes.failure
                for event in failed.history.events
                if event.HasField("activity_task_failed_event_attributes")]
    assert failures
    for failure in failures:
        assert failure.message == "Encoded failure"
        assert failure.encoded_attributes.metadata["encoding"] == ENCRYPTED_ENCODING


@pytest.fixture(scope="module")
async def codec_server(encrypted: Settings) -> AsyncIterator[str]:
    """The real ``relayflow codec-server`` process with the workers' keys and a token."""
    async with codec_server_process(encrypted) as server:
        assert TOKEN not in server.output
        yield server.url
    assert server.returncode == 0
    assert TOKEN not in server.output


def _decode_as_the_cli_does(url: str, namespace: str, payloads: list[Payload]) -> list[Payload]:
    body = json.dumps({"payloads": [json_format.MessageToDict(p) for p in payloads]}).encode()
    request = urllib.request.Request(
        f"{url}/decode", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-Namespace": namespace,
                 "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return list(json_format.Parse(response.read(), Payloads()).payloads)


async def test_the_codec_server_gives_an_operator_the_clear_payloads(
        sagas: list[Saga], codec_server: str, encrypted: Settings) -> None:
    for saga in sagas:
        stored = list(_payloads(saga.history))
        clear = await asyncio.to_thread(_decode_as_the_cli_does, codec_server,
                                        encrypted.temporal_namespace, stored)
        assert len(clear) == len(stored)
        readable = b"\n".join(p.SerializeToString() for p in clear)
        for secret in saga.secrets:
            assert secret.encode() in readable, secret
    failed = sagas[1]
    assert f"{failed.order.items[0].sku}: 2 wanted, 0 available".encode() in readable


async def test_temporal_workflow_show_reads_the_history_through_the_codec_server(
        sagas: list[Saga], codec_server: str, encrypted: Settings) -> None:
    temporal = str(Path(sys.executable).with_name("temporal"))
    order = sagas[0].order

    async def show(*codec: str) -> str:
        process = await asyncio.create_subprocess_exec(
            temporal, "workflow", "show", "--workflow-id", f"order-{order.order_id}",
            "--address", encrypted.temporal_address,
            "--namespace", encrypted.temporal_namespace, "--detailed", *codec,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    assert order.customer_id not in await show()
    decoded = await show("--codec-endpoint", codec_server, "--codec-auth", f"Bearer {TOKEN}")
    assert f"input[0].event.customer_id: {order.customer_id}" in decoded
    assert f"input[0].event.items[0].sku: {order.items[0].sku}" in decoded
