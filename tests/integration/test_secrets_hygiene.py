"""Secrets hygiene: nothing the secured flow writes holds a password, a key or a token.

Everything is on at once, each secret a random value of its own: Kafka over
SASL_SSL with client certificates and a principal per process (SCRAM-SHA-512;
the tools connect with PLAIN, as Confluent Cloud clients do), Temporal over
TLS through nginx demanding an API key, payload encryption, the codec server
with a token. Orders flow (one completes, one fails out of stock, a bad record
is dead-lettered), then every path that can fail is made to: a wrong Kafka
password, a wrong API key, bad keys, a refused ACL, the codec server called
without or with a wrong token, a schema registry URL with a password that
cannot be reached.

Everything written is kept: this process's logs (DEBUG) and output, the
output of each ``relayflow`` process (run at DEBUG), among them a secured
worker's with the Temporal core (Rust) logging at TRACE to its standard
output, the broker's and nginx's and Temporal's log files, every record on
the broker (keys, values, headers, dead letters and outcomes alike), the
sagas' histories as the server stores them, ``relayflow dev status``, the
codec server's answers, settings and credentials reprs, and each exception's
text with its chain. None of it may hold a secret: as it is, in base64, or
(for key bytes) in hex or raw. And none of it may be missing or empty: each
place holds the lines that show the secured path ran (SCRAM and PLAIN
sign-ins, calls through the terminator, the worker polling through it, the
core's own log, the dead letter), so a scan of nothing cannot pass.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads
from temporalio.api.history.v1 import History

from devtools.secured_kafka import SecuredKafka
from devtools.tls import Pki, TlsTerminator, make_pki
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.process import service_dir
from relayflow.kafka.reads import read_records, start_group_at_end
from relayflow.kafka.schema_registry import HttpSchemaRegistry, schema_registry
from relayflow.reference.activities.store import OUT_OF_STOCK_PREFIX
from relayflow.reference.app import APP
from relayflow.reference.events import OrderCompleted, OrderFailed, OrderPlaced
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal, running, wait_for_temporal
from relayflow.runtime.clients import kafka_clients
from relayflow.temporal.payload_codec import payload_codec
from relayflow.temporal.tls import temporal_credentials
from relayflow.testing import app_kafka
from tests.helpers.secrets_scan import Secret, Written
from tests.helpers.support import order_placed
from tests.integration.running import RELAYFLOW, codec_server_process, worker_output

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _random(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


API_KEY, WRONG_API_KEY = _random("tmprl-api-key"), _random("tmprl-wrong-key")
CODEC_TOKEN, WRONG_CODEC_TOKEN = _random("codec-token"), _random("codec-wrong-token")
WRONG_KAFKA_PASSWORD = _random("kafka-wrong-password")
REGISTRY_PASSWORD = _random("registry-password")


@dataclass(frozen=True)
class Secured:
    """The secured flow's settings, by process, and the secrets they hold."""

    bridge: Settings
    worker: Settings
    tools: Settings
    secrets: list[Secret]
    terminator: TlsTerminator
    pki: Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def key_terminator(relayflow_stack: Settings, pki: Pki, tmp_path: Path) -> Iterator[TlsTerminator]:
    with TlsTerminator(pki, relayflow_stack.temporal_address, tmp_path / "nginx",
                       api_key=API_KEY) as terminator:
        yield terminator


@pytest.fixture
def flow(secured: SecuredKafka, pki: Pki, key_terminator: TlsTerminator,
         tmp_path: Path) -> Secured:
    keys = {f"payload-{n}": secrets.token_bytes(32) for n in (2025, 2026)}
    keys_file = tmp_path / "payload-keys"
    keys_file.write_text("".join(f"{key_id}:{base64.b64encode(raw).decode()}\n"
                                 for key_id, raw in keys.items()))
    suffix = uuid.uuid4().hex[:8]
    common: dict[str, Any] = {
        "task_queue": f"hygiene-{suffix}", "kafka_consumer_group": f"relayflow-bridge-{suffix}",
        "temporal_address": key_terminator.address, "temporal_tls_ca_file": pki.ca,
        "temporal_api_key": SecretStr(API_KEY), "payload_encryption_keys_file": keys_file,
        "codec_server_token": SecretStr(CODEC_TOKEN), "log_level": "DEBUG"}
    kafka = secured.secrets
    found = [
        *(Secret.text(f"Kafka password of {user}", password)
          for user, password in kafka.users().items()),
        Secret.text("wrong Kafka password", WRONG_KAFKA_PASSWORD),
        Secret.pem_key("Kafka client key", kafka.client_key),
        Secret.pem_key("Kafka broker key", kafka.broker_keystore),
        Secret.text("Temporal API key", API_KEY),
        Secret.text("wrong Temporal API key", WRONG_API_KEY),
        Secret.pem_key("Temporal client key", pki.client.key),
        Secret.pem_key("nginx server key", pki.server.key),
        *(Secret.key(f"payload key {key_id}", raw) for key_id, raw in keys.items()),
        Secret.text("codec server token", CODEC_TOKEN),
        Secret.text("wrong codec server token", WRONG_CODEC_TOKEN),
        Secret.text("schema registry password", REGISTRY_PASSWORD),
    ]
    return Secured(
        bridge=secured.as_principal("bridge", **common),
        worker=secured.as_principal("worker", **common),
        tools=secured.as_principal("tools", kafka_sasl_mechanism="PLAIN", **common),
        secrets=found, terminator=key_terminator, pki=pki)


async def _orders_flow(flow: Secured) -> list[OrderPlaced]:
    """One order completes, one fails out of stock, a bad record goes to the DLQ."""
    await start_group_at_end(kafka_clients(flow.bridge), flow.bridge.kafka_consumer_group,
                             APP.input_topics)
    completed = order_placed()
    failed = order_placed(sku=f"{OUT_OF_STOCK_PREFIX}{uuid.uuid4().hex[:6]}")
    junk = f"junk-{uuid.uuid4().hex[:8]}"
    async with running(flow.bridge, APP, worker_settings=flow.worker), \
            app_kafka(flow.tools, APP) as kafka:
        for order in (completed, failed):
            await kafka.send(order)
        await kafka.send_bytes(ORDERS_EVENTS, b"\xc3\x01garbage", key=junk)
        await kafka.wait_for(OrderCompleted, key=completed.order_id, timeout=60)
        outcome = await kafka.wait_for(OrderFailed, key=failed.order_id, timeout=60)
        dead = await kafka.wait_for_dead_letter(ORDERS_EVENTS, key=junk, timeout=60)
    assert outcome.reason == "out_of_stock"
    assert dead.error, dead  # dlq-error explains
    return [completed, failed]


async def _histories(flow: Secured, orders: list[OrderPlaced], written: Written) -> History:
    """The sagas' histories as the server stores them (read without the keys)."""
    plain = flow.tools.model_copy(update={"payload_encryption_keys_file": None})
    client = await connect_temporal(plain)
    last = History()
    for order in orders:
        stored = await client.get_workflow_handle(f"order-{order.order_id}").fetch_history()
        last = History(events=stored.events)
        written.add(f"history of order-{order.order_id}", last.SerializeToString())
        written.add(f"history of order-{order.order_id} (JSON)", json_format.MessageToJson(last))
    return last


async def _every_record(flow: Secured, written: Written) -> None:
    """Every record of every topic on the (test's own) secured broker."""
    records = await read_records(kafka_clients(flow.tools),
                                 [topic.name for topic in APP.all_topics()])
    assert {r.topic for r in records} >= {ORDERS_EVENTS, f"{ORDERS_EVENTS}.dlq",
                                          "orders.outcomes"}
    for r in records:
        headers = b"\n".join(name.encode() + b"=" + value for name, value in r.headers)
        written.add(f"Kafka record {r.coordinates}",
                    b"\n".join([r.key or b"", r.value or b"", headers]))


async def _error_of(where: str, written: Written,
                    call: Callable[[], Awaitable[object]]) -> BaseException:
    try:
        async with asyncio.timeout(60):
            await call()
    except Exception as error:  # noqa: BLE001 - every kind is kept and scanned
        written.add_error(where, error)
        return error
    raise AssertionError(f"{where}: nothing was raised")


def _bad_keys(tmp_path: Path) -> dict[str, Path]:
    """Keys files an operator could get wrong, each holding a real-looking key."""
    hex_key, bare_key = secrets.token_bytes(32), secrets.token_bytes(32)
    files = {
        # A hex key pasted as the id, its base64 "id" after it ("main" is base64 of 3 bytes).
        "key and id swapped": f"{hex_key.hex()}:main\n",
        "key without an id": f"{base64.b64encode(bare_key).decode()}\n",
    }
    tmp_path.mkdir()
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / name.replace(" ", "-")
        paths[name].write_text(text)
    return paths


def _bad_key_secrets(paths: dict[str, Path]) -> list[Secret]:
    hex_key = paths["key and id swapped"].read_text().split(":")[0]
    bare = paths["key without an id"].read_text().strip()
    return [Secret.key("the swapped key", bytes.fromhex(hex_key)),
            Secret.key("the key without an id", base64.b64decode(bare))]


async def _refusals(flow: Secured, bad_keys: dict[str, Path], written: Written) -> None:
    """Every refusal this process meets, its exception kept."""
    wrong_password = flow.bridge.model_copy(
        update={"kafka_sasl_password": SecretStr(WRONG_KAFKA_PASSWORD)})
    refused = await _error_of("wrong Kafka password", written,
                              kafka_clients(wrong_password).check_access)
    assert "RELAYFLOW_KAFKA_SASL_PASSWORD" in str(refused)
    wrong_plain = flow.tools.model_copy(
        update={"kafka_sasl_password": SecretStr(WRONG_KAFKA_PASSWORD)})
    await _error_of("wrong Kafka password (PLAIN)", written,
                    kafka_clients(wrong_plain).check_access)
    wrong_key = flow.worker.model_copy(update={"temporal_api_key": SecretStr(WRONG_API_KEY)})
    refused = await _error_of("wrong API key", written, lambda: wait_for_temporal(wrong_key))
    assert "RELAYFLOW_TEMPORAL_API_KEY" in str(refused)
    for name, path in bad_keys.items():
        settings = flow.worker.model_copy(update={"payload_encryption_keys_file": path})
        refused = await _error_of(f"bad keys file: {name}", written,
                                  functools.partial(asyncio.to_thread, payload_codec, settings))
        assert "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE" in str(refused)

    async def write_decision_as_the_worker() -> None:
        async with kafka_clients(flow.worker).started_producer() as producer:
            await producer.send_and_wait(APPROVALS_DECISIONS, b"x", key=b"k")

    refused = await _error_of("refused ACL", written, write_decision_as_the_worker)
    assert "TopicAuthorization" in type(refused).__name__
    registry = f"http://registry-user:{REGISTRY_PASSWORD}@127.0.0.1:{free_port()}"
    await _error_of("unreachable schema registry", written, lambda: asyncio.to_thread(
        HttpSchemaRegistry(registry, timeout=5).schema_by_id, 1))
    not_http = Settings(schema_registry_url=registry.replace("http:", "ftp:"))
    await _error_of("schema registry URL not http", written,
                    lambda: asyncio.to_thread(schema_registry, not_http))
    mtls = flow.worker.model_copy(update={"temporal_api_key": None,
                                          "temporal_tls_cert_file": flow.pki.client.cert,
                                          "temporal_tls_key_file": flow.pki.client.key,
                                          "schema_registry_url": registry})
    for name, settings in (("bridge", flow.bridge), ("worker", flow.worker),
                           ("tools", flow.tools), ("wrong password", wrong_password),
                           ("wrong API key", wrong_key), ("mTLS and registry", mtls)):
        written.add(f"settings of {name}", f"{settings!r}\n{settings}")
        written.add(f"Temporal credentials of {name}", repr(temporal_credentials(settings)))
    written.add("payload codec", repr(payload_codec(flow.worker)))


def _env(settings: Settings, **env: str) -> dict[str, str]:
    """A ``relayflow`` process's environment: ``settings`` at DEBUG, ``env`` over them."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("RELAYFLOW_")}
    return {**inherited, **settings.as_env(), "RELAYFLOW_LOG_LEVEL": "DEBUG", **env}


async def _relayflow(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        RELAYFLOW, *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, f"stdout:\n{out.decode()}\nstderr:\n{err.decode()}"


async def _processes(flow: Secured, secured: SecuredKafka, bad_keys: dict[str, Path],
                     written: Written) -> None:
    """``relayflow`` processes refused at start, and ``relayflow dev status``."""
    runs = {
        # (command, environment, the setting its one line names; None: it succeeds)
        "bridge with a wrong Kafka password": (
            "bridge", _env(flow.bridge, RELAYFLOW_KAFKA_SASL_PASSWORD=WRONG_KAFKA_PASSWORD),
            "RELAYFLOW_KAFKA_SASL_PASSWORD"),
        "worker with a wrong API key": (
            "worker", _env(flow.worker, RELAYFLOW_TEMPORAL_API_KEY=WRONG_API_KEY),
            "RELAYFLOW_TEMPORAL_API_KEY"),
        **{f"worker with a bad keys file ({name})": (
            "worker", _env(flow.worker, RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE=str(path)),
            "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE") for name, path in bad_keys.items()},
        "dev status": ("dev status", _env(secured.settings), None),
    }
    results = await asyncio.gather(*(_relayflow(*command.split(), env=env)
                                     for command, env, _ in runs.values()))
    for (name, (_, _, setting)), (code, output) in zip(runs.items(), results, strict=True):
        written.add(f"relayflow {name}", output)
        if setting is None:
            assert code == 0, output
            assert "Kafka secured" in output, output
        else:
            assert code == 2, output
            assert f"relayflow: {setting}" in output, output
            assert "Traceback" not in output, output


def _post(url: str, body: bytes, authorization: str | None) -> str:
    headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return f"{answer.status}\n{answer.headers}\n{answer.read().decode()}"
    except urllib.error.HTTPError as refused:
        return f"{refused.code}\n{refused.headers}\n{refused.read().decode()}"


async def _codec_server(flow: Secured, history: History, written: Written) -> None:
    """The codec server called without a token, with a wrong one, and with the right one."""
    payloads = [event.workflow_execution_started_event_attributes.input.payloads[0]
                for event in history.events[:1]]
    body = json_format.MessageToJson(Payloads(payloads=payloads)).encode()
    async with codec_server_process(flow.worker, RELAYFLOW_LOG_LEVEL="DEBUG") as server:
        for name, authorization in (("no token", None),
                                    ("wrong token", f"Bearer {WRONG_CODEC_TOKEN}"),
                                    ("the token", f"Bearer {CODEC_TOKEN}")):
            answer = await asyncio.to_thread(_post, f"{server.url}/decode", body, authorization)
            written.add(f"codec server answer ({name})", answer)
            assert answer.startswith("200" if name == "the token" else "401"), answer
    assert server.returncode == 0, server.output
    written.add("relayflow codec-server", server.output)


async def _worker_process(flow: Secured, folder: Path, written: Written) -> None:
    """A secured ``relayflow worker`` process, the Temporal core logging at TRACE."""
    output = await worker_output(flow.worker, folder)
    written.add("relayflow worker (core at TRACE): stdout", output.stdout)
    written.add("relayflow worker (core at TRACE): stderr", output.stderr)


def _filled(flow: Secured, orders: list[OrderPlaced], written: Written) -> None:
    """Every place the scan read holds what shows the secured flow ran."""
    polling = f"worker polling task queue {flow.worker.task_queue} on {flow.terminator.address}"
    written.assert_filled({
        "this process's log records": [
            polling, "Authenticated as bridge via SCRAM-SHA-512",
            "Authenticated as worker via SCRAM-SHA-512", "Authenticated as tools via PLAIN",
            "SaslAuthenticationFailed", "dead-lettered orders.events"],
        "relayflow worker (core at TRACE): stdout": [
            "temporalio_sdk_core::worker", "Initializing worker", flow.worker.task_queue],
        "relayflow worker (core at TRACE): stderr": [
            polling, "Authenticated as worker via SCRAM-SHA-512"],
        "nginx/access.log": ["StartWorkflowExecution 200", "RespondWorkflowTaskCompleted 200"],
        "secured broker/server.log": ["authorizer", "Kafka Server started"],
        "relayflow codec-server": ["bearer token required"],
        "codec server answer (the token)": ["200"],
        "relayflow dev status": ["Kafka secured"],
        **{f"history of order-{order.order_id}": [b"OrderSaga"] for order in orders},
    })
    assert any(where.startswith(f"Kafka record {ORDERS_EVENTS}.dlq/")
               for where in written.places), list(written.places)


def _log_files(flow: Secured, secured: SecuredKafka, stack: Settings, written: Written) -> None:
    kafka = service_dir(secured.settings, "kafka")
    written.add_logs("secured broker", kafka / "logs")
    written.add("secured broker/stdout.log", (kafka / "stdout.log").read_bytes())
    written.add_logs("nginx", flow.terminator.folder)
    temporal = service_dir(stack, "temporal") / "stdout.log"
    if temporal.exists():  # the stack is this session's own
        written.add("Temporal server/stdout.log", temporal.read_bytes())


async def test_no_secret_appears_in_anything_the_secured_flow_writes(
        flow: Secured, secured: SecuredKafka, relayflow_stack: Settings, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    written = Written()
    bad_keys = _bad_keys(tmp_path / "bad-keys")
    orders = await _orders_flow(flow)
    history = await _histories(flow, orders, written)
    await _every_record(flow, written)
    await _refusals(flow, bad_keys, written)
    await _processes(flow, secured, bad_keys, written)
    await _codec_server(flow, history, written)
    await _worker_process(flow, tmp_path, written)
    _log_files(flow, secured, relayflow_stack, written)
    written.add("this process's log records", caplog.text)
    out, err = capfd.readouterr()
    written.add("this process's stdout and stderr", f"{out}\n{err}")

    _filled(flow, orders, written)
    every_secret = [*flow.secrets, *_bad_key_secrets(bad_keys)]
    leaks = written.leaks(every_secret)
    assert not leaks, "\n".join(leaks)
    # The scan finds what is there: the processes' own settings hold each secret in use.
    given = Written()
    given.add("environments", "\n".join(f"{v}" for s in (flow.bridge, flow.worker, flow.tools)
                                        for v in s.as_env().values()))
    given.add("keys files", b"\n".join(p.read_bytes() for p in [
        *bad_keys.values(), flow.worker.payload_encryption_keys_file or Path()]))
    given.add("PEM files", b"\n".join(p.read_bytes() for p in (
        secured.secrets.client_key, secured.secrets.broker_keystore, flow.pki.client.key,
        flow.pki.server.key)))
    found = {leak.split(" (")[0] for leak in given.leaks(every_secret)}
    assert found >= {s.name for s in every_secret} - {
        "wrong Kafka password", "wrong Temporal API key", "wrong codec server token",
        "schema registry password", "Kafka password of admin", "Kafka password of approvals"}
