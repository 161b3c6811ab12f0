"""The AsyncAPI document: generated from the code, committed, valid, and served as a page."""

from __future__ import annotations

import copy
import difflib
import json
import os
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from devtools.asyncapi_specs import asyncapi_errors, official_schema
from examples.parcels.app import APP as PARCELS
from examples.tickets.app import APP as TICKETS
from relayflow.application import Application
from relayflow.asyncapi.document import asyncapi_document, to_json, to_yaml
from relayflow.asyncapi.site import AsyncApiSite
from relayflow.cli.main import app as cli
from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from schemas.codec import load_schemas
from schemas.dead_letters import DlqReason
from schemas.formats import SchemaFormat
from schemas.headers import DLQ_REASON, EVENT_TYPE
from schemas.topics import PARKED_KEYS, dlq_topic
from tests.helpers.counters.app import APP as COUNTERS

ROOT = Path(__file__).resolve().parents[4]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"
REGENERATE = "relayflow asyncapi --defaults --output docs/asyncapi.yaml"
DEFAULTS = Settings.model_construct()
SECURED = Settings.model_construct(
    kafka_bootstrap_servers="k1.example:9093,k2.example:9093,k3.example:9093",
    kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="relayflow", kafka_sasl_password=SecretStr("sasl-s3cret"),
    kafka_ssl_cert_file=Path("/run/secrets/client.pem"), kafka_consumer_group="team-bridge",
    schema_registry_url="https://reader:registry-s3cret@registry.example:8081/sr",
)
APPS = [pytest.param(APP, id="reference"), pytest.param(TICKETS, id="tickets"),
        pytest.param(PARCELS, id="parcels")]


@pytest.fixture(scope="session")
def official() -> dict[str, Any]:
    """AsyncAPI 3.0.0's JSON Schema from the pinned @asyncapi/specs (npm, cached)."""
    return official_schema("3.0.0")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_committed_document_is_what_the_code_generates() -> None:
    generated = to_yaml(asyncapi_document(APP, DEFAULTS))
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if committed != generated:
        diff = "".join(list(difflib.unified_diff(
            committed.splitlines(keepends=True), generated.splitlines(keepends=True),
            "docs/asyncapi.yaml (committed)", "generated"))[:40])
        pytest.fail(f"docs/asyncapi.yaml is out of date with the code; regenerate it with "
                    f"`{REGENERATE}` (or `make asyncapi`) and commit it:\n{diff}")


def test_the_committed_document_is_valid_asyncapi_3(official: dict[str, Any]) -> None:
    committed = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    assert committed["asyncapi"] == "3.0.0"
    assert asyncapi_errors(committed, official) == []


@pytest.mark.parametrize("settings", [pytest.param(DEFAULTS, id="defaults"),
                                      pytest.param(SECURED, id="secured")])
@pytest.mark.parametrize("application", APPS)
def test_the_document_is_valid_and_every_reference_resolves(
        application: Application, settings: Settings, official: dict[str, Any]) -> None:
    document = json.loads(to_json(asyncapi_document(application, settings)))
    assert asyncapi_errors(document, official) == []
    # What the JSON Schema cannot check and AsyncAPI's parser does: references point somewhere,
    # and an operation's messages are messages of its own channel.
    for ref in _refs(document):
        assert _resolve(document, ref) is not None, ref
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), (name, message)


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "an Avro record without fields": (
        lambda d: d["components"]["schemas"]["relayflow.orders.OrderPlaced"]["schema"].pop(
            "fields"),
        "components/schemas/relayflow.orders.OrderPlaced/schema"),
    "an Avro field of no type": (
        lambda d: d["components"]["schemas"]["relayflow.orders.OrderPlaced"]["schema"][
            "fields"][0].__setitem__("type", 7),
        "components/schemas/relayflow.orders.OrderPlaced/schema/fields/0/type"),
    "an unknown Kafka message binding field": (
        lambda d: d["components"]["messages"]["relayflow.orders.OrderPlaced"]["bindings"][
            "kafka"].__setitem__("partitionKey", "order_id"),
        "components/messages/relayflow.orders.OrderPlaced/bindings/kafka"),
    "AsyncAPI 2's publish action": (
        lambda d: d["operations"]["receive-orders.events"].__setitem__("action", "publish"),
        "operations/receive-orders.events/action"),
    "a group id that is no schema": (
        lambda d: d["operations"]["receive-orders.events"]["bindings"]["kafka"].__setitem__(
            "groupId", "relayflow-bridge"),
        "operations/receive-orders.events/bindings/kafka/groupId"),
    "partitions as text": (
        lambda d: d["channels"]["orders.events"]["bindings"]["kafka"].__setitem__(
            "partitions", "6"),
        "channels/orders.events/bindings/kafka/partitions"),
    "no info": (lambda d: d.pop("info"), "(root)"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_an_invalid_document_is_refused(mutation: str, official: dict[str, Any]) -> None:
    document = copy.deepcopy(asyncapi_document(APP, DEFAULTS))
    mutate, where = MUTATIONS[mutation]
    mutate(document)
    errors = asyncapi_errors(document, official)
    assert errors, f"{mutation} passed validation"
    assert any(error.startswith(where) for error in errors), errors


@pytest.mark.parametrize("application", APPS)
def test_every_topic_event_route_and_schema_of_the_application_is_documented(
        application: Application) -> None:
    document = asyncapi_document(application, DEFAULTS)
    channels, operations = document["channels"], document["operations"]
    avsc = load_schemas(application.schema_folder)
    codec = application.codec()
    assert list(channels) == [topic.name for topic in application.all_topics()]
    for topic in application.all_topics():
        channel = channels[topic.name]
        assert channel["address"] == topic.name
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        if topic.inbound:
            receive = operations[f"receive-{topic.name}"]
            assert receive["action"] == "receive"
            assert receive["bindings"]["kafka"]["groupId"]["enum"] == ["relayflow-bridge"]
            assert f"send-{topic.name}" not in operations
            assert set(channels[dlq_topic(topic.name)]["messages"]) == {*topic.events,
                                                                        "unreadable"}
        else:
            assert operations[f"send-{topic.name}"]["action"] == "send"
        for event in topic.events:
            message = _resolve(document, channel["messages"][event]["$ref"])
            assert message["name"] == event
            fmt = codec.format_of(event)
            assert message["contentType"] == fmt.content_type
            payload = _resolve(document, message["payload"]["$ref"])
            schema = avsc[event] if fmt is SchemaFormat.AVRO \
                else codec.json.schema_of(event) if fmt is SchemaFormat.JSON \
                else codec.protobuf.schema_text[event]
            assert payload == {"schemaFormat": fmt.asyncapi_format, "schema": schema}
            assert message["headers"]["allOf"][1]["properties"][EVENT_TYPE] == {"const": event}
    assert channels[PARKED_KEYS]["bindings"]["kafka"]["topicConfiguration"] == {
        "cleanup.policy": ["compact"]}
    assert {"send", "receive"} == {operations[f"{action}-{PARKED_KEYS}"]["action"]
                                   for action in ("send", "receive")}
    routes = [line for operation in operations.values()
              for line in operation.get("x-relayflow-routes", [])]
    assert [(r["event-type"], r["action"], r["workflow"], r["workflow-id"], r.get("signal"))
            for r in routes] == [(route.event_type.avro_name, str(route.action), route.workflow,
                                  route.workflow_id, route.signal) for route in application.routes]


def test_each_message_names_its_real_format() -> None:
    schemas = asyncapi_document(PARCELS, DEFAULTS)["components"]["schemas"]
    assert schemas["parcels.ParcelShipped"]["schemaFormat"] == \
        "application/vnd.google.protobuf;version=3"
    assert "message ParcelShipped {" in schemas["parcels.ParcelShipped"]["schema"]
    delivered = schemas["parcels.ParcelDelivered"]
    assert delivered["schemaFormat"] == "application/schema+json;version=draft-07"
    assert delivered["schema"]["title"] == "parcels.ParcelDelivered"
    with AsyncApiSite(asyncapi_document(PARCELS, DEFAULTS), port=0).serving() as url:
        status, _, page = _get(url)
    assert status == 200
    assert "message ParcelClosed {" in page  # the .proto, shown as it is
    assert "signed_by" in page  # a field of the JSON Schema's table


def test_keys_and_required_headers_follow_the_code() -> None:
    messages = asyncapi_document(APP, DEFAULTS)["components"]["messages"]
    placed, decided = messages["relayflow.orders.OrderPlaced"], messages[
        "relayflow.approvals.ApprovalDecided"]
    batch = messages["relayflow.batches.BatchRequested"]
    assert "`order_id`" in placed["bindings"]["kafka"]["key"]["description"]
    assert "`order_id`" in decided["bindings"]["kafka"]["key"]["description"]
    assert "`batch_id`" in batch["bindings"]["kafka"]["key"]["description"]
    assert placed["bindings"]["kafka"]["key"]["maxLength"] == 200
    # The bridge accepts inputs without headers; every outcome carries them.
    assert placed["headers"]["allOf"][1]["required"] == []
    completed = messages["relayflow.orders.OrderCompleted"]["headers"]["allOf"][1]
    assert {EVENT_TYPE, "event-id", "correlation-id", "traceparent"} <= set(
        completed["required"])
    # An outcome may go by claim check (its headers then say where the value is); an input not.
    claim_check = {"$ref": "#/components/schemas/ClaimCheckHeaders"}
    assert claim_check in messages["relayflow.orders.OrderCompleted"]["headers"]["allOf"]
    assert claim_check not in placed["headers"]["allOf"]
    headers = asyncapi_document(APP, DEFAULTS)["components"]["schemas"]["ClaimCheckHeaders"]
    assert set(headers["properties"]) == {"claim-check-key", "claim-check-bytes",
                                          "claim-check-sha256", "claim-check-content-type"}


def test_the_dlq_reason_header_is_the_contract_s_table_of_reasons() -> None:
    header = asyncapi_document(APP, DEFAULTS)["components"]["schemas"]["DeadLetterHeaders"][
        "properties"][DLQ_REASON]
    assert header["enum"] == [reason.value for reason in DlqReason]
    for reason in DlqReason:
        assert f"- `{reason}`: {reason.description}\n" in header["description"] + "\n"


def test_a_deployment_s_brokers_security_and_registry_are_described_without_secrets() -> None:
    document = asyncapi_document(APP, SECURED)
    servers = document["servers"]
    assert [server["host"] for server in servers.values()] == [
        "k1.example:9093", "k2.example:9093", "k3.example:9093"]
    assert {server["protocol"] for server in servers.values()} == {"kafka-secure"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["sasl"]["type"] == "scramSha512"
    assert schemes["client-certificate"]["type"] == "X509"
    registry = servers["kafka-1"]["bindings"]["kafka"]
    assert registry["schemaRegistryUrl"] == "https://registry.example:8081/sr"
    assert document["operations"]["receive-orders.events"]["bindings"]["kafka"]["groupId"][
        "enum"] == ["team-bridge"]
    messages = document["components"]["messages"]
    # Outcomes are written in the Confluent framing; inputs may come either way.
    assert messages["relayflow.orders.OrderCompleted"]["bindings"]["kafka"][
        "schemaIdPayloadEncoding"] == "confluent"
    assert "schemaIdLocation" not in messages["relayflow.orders.OrderPlaced"]["bindings"]["kafka"]
    text = to_yaml(document)
    assert "s3cret" not in text
    assert "reader" not in text


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_the_page_shows_every_channel_message_header_and_field() -> None:
    document = asyncapi_document(APP, DEFAULTS)
    with AsyncApiSite(document, port=0).serving() as url:
        status, content_type, page = _get(url)
        assert (status, content_type) == (200, "text/html; charset=utf-8")
        for topic in APP.all_topics():
            assert f"<code>{topic.name}</code>" in page
        for event in ("relayflow.orders.OrderPlaced", "relayflow.batches.BatchCompleted"):
            assert f"<code>{event}</code>" in page
        for header in (EVENT_TYPE, "traceparent", DLQ_REASON, "dlq-source-offset"):
            assert f"<code>{header}</code>" in page
        assert "<li><code>target-closed</code>: The workflow has already closed" in page
        # Fields of a record nested in a payload, the routes, the consumer group, the framing.
        assert "<code>unit_price_cents</code>" in page
        assert "<code>order-{order_id}</code>" in page
        assert "<code>relayflow-bridge</code>" in page
        assert "<em>single-object encoding</em>" in page
        assert yaml.safe_load(_get(url + "asyncapi.yaml")[2]) == document
        assert json.loads(_get(url + "asyncapi.json")[2]) == document
        assert _get(url + "nothing-here")[0] == 404


def test_the_page_escapes_what_the_document_says() -> None:
    document = copy.deepcopy(asyncapi_document(APP, DEFAULTS))
    document["info"]["description"] = "<script>alert(1)</script> **bold**"
    document["channels"]["orders.events"]["messages"] = {"<img src=x>": {
        "name": "<b>n</b>", "payload": {"type": "string", "description": "<i>d</i>"}}}
    document["operations"] = {}
    with AsyncApiSite(document, port=0).serving() as url:
        page = _get(url)[2]
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <strong>bold</strong>" in page
    assert "<b>n</b>" not in page
    assert "&lt;b&gt;n&lt;/b&gt;" in page


def test_the_command_writes_yaml_or_json(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["asyncapi", "--defaults"])
    assert result.exit_code == 0, result.output
    assert result.stdout == to_yaml(asyncapi_document(APP, DEFAULTS))
    target = tmp_path / "contract" / "tickets.json"
    result = runner.invoke(cli, ["asyncapi", "--defaults", "--app", "examples.tickets.app:APP",
                                 "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(
        to_json(asyncapi_document(TICKETS, DEFAULTS)))


def test_the_command_describes_the_configured_deployment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS", "broker.internal:9092")
    monkeypatch.setenv("RELAYFLOW_KAFKA_CONSUMER_GROUP", "orders-bridge")
    result = CliRunner().invoke(cli, ["asyncapi", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["servers"]["kafka"]["host"] == "broker.internal:9092"
    assert document["operations"]["receive-orders.events"]["bindings"]["kafka"]["groupId"][
        "enum"] == ["orders-bridge"]


def test_relayflow_asyncapi_serve_answers_over_http() -> None:
    command = [str(Path(sys.executable).with_name("relayflow")), "asyncapi", "--serve",
               "--port", "0", "--app", "examples.tickets.app:APP"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                          env=env) as process:
        try:
            assert process.stdout is not None
            # Bounded: a command that never says where it listens fails instead of hanging.
            readable, _, _ = select.select([process.stdout], [], [], 30)
            assert readable, "relayflow asyncapi --serve said nothing in 30 s"
            line = process.stdout.readline()
            assert " on http://127.0.0.1:" in line, line
            url = line.split(" on ", 1)[1].split()[0]
            status, _, page = _get(url)
            assert status == 200
            assert "<code>tickets.events.dlq</code>" in page
        finally:
            process.send_signal(signal.SIGTERM)
            stopped: int | None
            try:
                stopped = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                stopped = None
    assert stopped == 0, "relayflow asyncapi --serve did not stop cleanly on SIGTERM"


def test_each_request_shows_its_reply_and_the_document_stays_valid(
        official: dict[str, Any]) -> None:
    document = asyncapi_document(COUNTERS, DEFAULTS)

    assert asyncapi_errors(json.loads(to_json(document)), official) == []
    request = document["operations"]["request-counters.requests-AddToCounter"]
    assert request["messages"] == [
        {"$ref": "#/channels/counters.requests/messages/tests.counters.AddToCounter"}]
    reply = request["reply"]
    assert reply["address"]["location"] == "$message.header#/reply-to"
    assert reply["channel"] == {"$ref": "#/channels/counters.replies"}
    assert [_resolve(document, m["$ref"])["$ref"] for m in reply["messages"]] == [
        "#/components/messages/tests.counters.CounterAdded",
        "#/components/messages/relayflow.replies.RequestFailed"]
    assert "send-counters.replies.mobile" in document["operations"]
    assert "request-counters.requests-CounterOpened" not in document["operations"]
    [route] = [r for r in document["operations"]["receive-counters.requests"][
        "x-relayflow-routes"] if r["event-type"] == "tests.counters.OpenAndAdd"]
    assert (route["action"], route["update"], route["reply-topic"]) == (
        "update-with-start", "open_and_add", "counters.replies")
