"""The Kafka contract as an AsyncAPI 3.0 document, generated from an application.

Everything comes from the code, nothing is kept by hand: the channels are the
application's topic table with its dead-letter topics and the parked-keys
topic (``Application.all_topics``), the messages its event types with their
``.avsc`` files as Avro payloads, the bridge's receive operations its routes,
and the headers the constants of ``schemas.headers``. What depends on a
deployment (brokers, security, consumer group, schema registry, limits) comes
from the settings; ``Settings.model_construct()`` gives the defaults, which
is what the committed ``docs/asyncapi.yaml`` describes.

FastStream can generate AsyncAPI too, but only from its own subscribers and
publishers: the bridge's one batch subscriber takes raw bytes (so its
payloads would be empty), and outcomes are written by the ``publish_outcome``
activity's producer, which FastStream never sees. So the document is written
from the same data the bridge and the worker are built from.
"""

from __future__ import annotations

import json
import textwrap
import urllib.parse
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import Any

import yaml

from bridge.parking import ParkEntry
from bridge.routes import UPDATING, Route
from relayflow.application import Application
from relayflow.config.settings import Settings
from schemas import Event
from schemas.codec import load_schemas
from schemas.dead_letters import DlqReason
from schemas.envelope import MAX_ID_LENGTH
from schemas.formats import SchemaFormat, format_of
from schemas.headers import (
    AVRO_CONTENT_TYPE,
    CAUSATION_ID,
    CLAIM_CHECK_BYTES,
    CLAIM_CHECK_CONTENT_TYPE,
    CLAIM_CHECK_KEY,
    CLAIM_CHECK_SHA256,
    CONTENT_TYPE,
    CORRELATION_ID,
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_REPLAY_ID,
    DLQ_REPLAY_LAST,
    DLQ_REPLAY_OF,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DLQ_TRUNCATED,
    DLQ_VALUE_BYTES,
    DLQ_VALUE_SHA256,
    EVENT_ID,
    EVENT_TYPE,
    REPLY_TO,
    TRACEPARENT,
)
from schemas.replies import FRAMEWORK_SCHEMA_FOLDER, ReplyReason, RequestFailed
from schemas.topics import PARKED_KEYS, Topic, dlq_topic

__all__ = [
    "ASYNCAPI_VERSION",
    "AVRO_SCHEMA_FORMAT",
    "KAFKA_BINDING_VERSION",
    "asyncapi_document",
    "to_json",
    "to_yaml",
]

ASYNCAPI_VERSION = "3.0.0"
AVRO_SCHEMA_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
"""The ``schemaFormat`` of an ``.avsc`` payload (the newest Avro version AsyncAPI 3.0 names)."""
_LOOKUP_STRATEGIES = {"record": "RecordNameStrategy", "topic": "TopicNameStrategy",
                      "topic-record": "TopicRecordNameStrategy"}
"""The Kafka binding's ``schemaLookupStrategy`` of each subject name strategy."""
KAFKA_BINDING_VERSION = "0.5.0"
"""The Kafka bindings version of AsyncAPI 3.0."""

_JSON = "application/json"
_BYTES = "application/octet-stream"
_EVENT_HEADERS = "EventHeaders"
_DEAD_LETTER_HEADERS = "DeadLetterHeaders"
_CLAIM_CHECK_HEADERS = "ClaimCheckHeaders"
_PARK_ENTRY = "ParkEntry"
_CORRELATION = "correlation-id"
_UNREADABLE = "unreadable"
_OUTCOME_HEADERS = (EVENT_TYPE, EVENT_ID, CORRELATION_ID, TRACEPARENT, CONTENT_TYPE)
"""Headers every outcome carries (``causation-id`` too, unless a flow started without one)."""

_ID = {"type": "string", "maxLength": MAX_ID_LENGTH}
_HEADERS: dict[str, dict[str, Any]] = {
    EVENT_TYPE: {"type": "string", "description": "Avro full name of the value's schema."},
    EVENT_ID: {"type": "string", "format": "uuid",
               "description": "The event's id (its `event_id`); a redelivery keeps it."},
    CORRELATION_ID: {**_ID, "description": "Id shared by every event of one business flow; "
                                           "the bridge uses the event id when it is missing."},
    CAUSATION_ID: {**_ID, "description": "Event id of the event that caused this one."},
    TRACEPARENT: {**_ID, "description": "W3C trace context."},
    CONTENT_TYPE: {"type": "string", "enum": [f.content_type for f in SchemaFormat],
                   "description": "MIME type of the value: its event type's format."},
    DLQ_REPLAY_ID: {"type": "string", "description": "Only on a record copied back from the "
                                                     "DLQ by `relayflow dlq replay`: its replay."},
    DLQ_REPLAY_OF: {"type": "string", "description": "On a replayed record: "
                                                     "`<dlq topic>/<partition>/<offset>`."},
    DLQ_REPLAY_LAST: {"type": "string", "description": "On the last record of a replay."},
    REPLY_TO: {"type": "string", "description": "Only on a request (an `update` or "
                                                "`update-with-start` route): the reply topic to "
                                                "answer on. It must be one the application "
                                                "declares as a reply topic; any other is "
                                                "dead-lettered (`reply-to-refused`)."},
}
_DLQ_HEADERS: dict[str, dict[str, Any]] = {
    DLQ_REASON: {"type": "string", "enum": [reason.value for reason in DlqReason],
                 "description": "Why it was dead-lettered (no other value is ever written):\n\n"
                                + "\n".join(f"- `{reason}`: {reason.description}"
                                            for reason in DlqReason)},
    DLQ_ERROR: {"type": "string", "maxLength": 2048, "description": "What went wrong."},
    DLQ_SOURCE_TOPIC: {"type": "string", "description": "Topic the record came from."},
    DLQ_SOURCE_PARTITION: {"type": "string", "pattern": "^[0-9]+$",
                           "description": "Its partition there (decimal)."},
    DLQ_SOURCE_OFFSET: {"type": "string", "pattern": "^[0-9]+$",
                        "description": "Its offset there (decimal)."},
    DLQ_FAILED_AT: {"type": "string", "format": "date-time",
                    "description": "When it failed (ISO-8601, UTC)."},
}
_CLAIM_CHECK: dict[str, dict[str, Any]] = {
    CLAIM_CHECK_KEY: {"type": "string", "pattern": "^outcomes/[0-9a-f]{64}$",
                      "description": "Only on an outcome whose value went by claim check: the "
                                     "value's name in the claim-check store (an object key "
                                     "under the bucket's prefix on S3). The record's own value "
                                     "is then empty (zero bytes, never null)."},
    CLAIM_CHECK_BYTES: {"type": "string", "pattern": "^[0-9]+$",
                        "description": "With `claim-check-key`: the stored value's length."},
    CLAIM_CHECK_SHA256: {"type": "string", "pattern": "^[0-9a-f]{64}$",
                         "description": "With `claim-check-key`: SHA-256 of the stored value "
                                        "(lowercase hex); check what you fetched against it."},
    CLAIM_CHECK_CONTENT_TYPE: {"type": "string",
                               "enum": [f.content_type for f in SchemaFormat],
                               "description": "With `claim-check-key`: the stored value's MIME "
                                              "type (as `content-type`)."},
}
_BOUNDED_COPY_HEADERS: dict[str, dict[str, Any]] = {
    DLQ_TRUNCATED: {"type": "string", "enum": ["value", "headers", "value,headers"],
                    "description": "Only on a bounded copy (the whole record was too large for "
                                   "the DLQ): what was cut. The value is then a prefix of the "
                                   "original's and the headers those that fit, in order; do not "
                                   "replay it."},
    DLQ_VALUE_BYTES: {"type": "string", "pattern": "^[0-9]+$",
                      "description": "Only on a bounded copy: the original value's length."},
    DLQ_VALUE_SHA256: {"type": "string", "pattern": "^[0-9a-f]{64}$",
                       "description": "Only on a bounded copy: SHA-256 of the whole original "
                                      "value (lowercase hex)."},
}


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _binding(**fields: Any) -> dict[str, Any]:
    return {"kafka": {**fields, "bindingVersion": KAFKA_BINDING_VERSION}}


def _key_field(model: type[Event]) -> str | None:
    """The field an event's ``key`` property returns (it is code, so ask it)."""
    # Each field holds its own name: whichever the property returns is the key field.
    names: dict[str, Any] = {name: name for name in model.model_fields}
    probe = model.model_construct(**names)
    try:
        key = probe.key
    except Exception:  # noqa: BLE001 - a key made some other way is described in words
        return None
    return key if key in model.model_fields else None


def _key_schema(model: type[Event]) -> dict[str, Any]:
    field = _key_field(model)
    if field is None:
        return {"type": "string", "description": "The event's business key (UTF-8)."}
    schema = {name: value for name, value in model.model_json_schema()["properties"][field].items()
              if name != "title"}
    return {**schema, "description": f"The event's `{field}` (UTF-8); per-key order is kept."}


def _framing(settings: Settings) -> str:
    single_object = (
        "the Avro specification's *single-object encoding* (bytes `C3 01`, the 8-byte "
        "little-endian CRC-64-AVRO fingerprint of the schema's parsing canonical form, then "
        "the Avro binary body), which any Avro library decodes with the `.avsc` file alone "
        "(Java: `BinaryMessageDecoder`)")
    confluent = ("the Confluent wire format (byte `0`, the 4-byte big-endian id of the schema "
                 "in the registry, then the Avro binary body; subject: the record's full name)")
    if settings.schema_registry_url is None:
        return (f"Values are framed in {single_object}. With a schema registry configured, "
                f"outcomes are written in {confluent} and input records may use either.")
    return (f"Outcomes are framed in {confluent}. Input records may use that or {single_object}.")


def _description(app: Application, settings: Settings) -> str:
    parking = ("The key of a dead-lettered record is then *parked*: later records of that key "
               "follow it to the DLQ (`dlq-reason: parked`) until an operator replays or "
               "releases it (`relayflow dlq`); other keys keep flowing."
               if settings.bridge_park_keys else "Keys are not parked (`bridge_park_keys` off).")
    paragraphs = [
        (f"The Kafka contract of the relayflow application `{app.name}`: the topics its bridge "
         "reads, the outcome topics its workflows write, and the bridge's dead-letter and "
         "parked-keys topics. Generated by `relayflow asyncapi` from the application's topic "
         "table, routes and `.avsc` files: do not edit it by hand."),
        (f"**Values** are Avro binary (`{CONTENT_TYPE}: {AVRO_CONTENT_TYPE}`) unless the event "
         "type declares JSON (validated by a JSON Schema) or Protobuf; each message's payload "
         "is its event's schema with its `schemaFormat`, and its `contentType` the header's "
         f"value. {_framing(settings)}"),
        ("**Keys** are the event's business id, UTF-8; Kafka keeps per-key order and relayflow "
         "keeps it end to end. A record whose key is not its event's business key is "
         "dead-lettered (`bad-key`)."),
        (f"**Headers** (UTF-8 values): `{EVENT_TYPE}`, `{EVENT_ID}`, `{CORRELATION_ID}`, "
         f"`{CAUSATION_ID}`, `{TRACEPARENT}`, `{CONTENT_TYPE}`. Every outcome carries them. On "
         "input they are optional (the schema fingerprint names the type), but a record whose "
         "headers contradict its value is dead-lettered (`header-mismatch`), and so is one with "
         f"more than {settings.max_header_count} headers or {settings.max_header_bytes} bytes of "
         f"them (`bad-header`), or a value over {settings.max_payload_bytes} bytes (`oversize`)."),
        ("**Dead letters**: a record that can never become a workflow command goes to "
         "`<topic>.dlq`, in the same partition with the same key, its value and headers "
         f"untouched, plus the `dlq-*` headers. {parking}"),
        ("**Large outcomes**: an outcome too large for its topic (or over "
         "RELAYFLOW_CLAIM_CHECK_OUTCOME_BYTES) goes by claim check when a blob store is "
         f"configured: the record has an empty value and `{CLAIM_CHECK_KEY}`, "
         f"`{CLAIM_CHECK_BYTES}`, `{CLAIM_CHECK_SHA256}` and `{CLAIM_CHECK_CONTENT_TYPE}` say "
         "where the value is in the claim-check store; the other headers are as usual. Fetch "
         "it, check its size and digest, and decode it as the value (`relayflow tail` does)."),
        ("**Evolution**: schemas change only backward-compatibly (new fields with defaults), and "
         "new event types may appear on an outcome topic: skip an `event-type` you do not handle."),
    ]
    # Hard-wrapped for the YAML file; Markdown reads a line break as a space (not after a hyphen).
    return "\n\n".join(textwrap.fill(paragraph, 96, break_on_hyphens=False,
                                     break_long_words=False) for paragraph in paragraphs)


def _servers(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(servers, security schemes) of the configured brokers."""
    protocol = settings.kafka_security_protocol
    schemes: dict[str, Any] = {}
    if settings.kafka_sasl_mechanism is not None:
        kind = {"PLAIN": "plain", "SCRAM-SHA-256": "scramSha256",
                "SCRAM-SHA-512": "scramSha512"}[settings.kafka_sasl_mechanism]
        schemes["sasl"] = {"type": kind, "description": f"SASL {settings.kafka_sasl_mechanism} "
                                                        "(RELAYFLOW_KAFKA_SASL_*)."}
    if settings.kafka_ssl_cert_file is not None:
        schemes["client-certificate"] = {"type": "X509", "description": "TLS client certificate "
                                                                        "(mTLS)."}
    server: dict[str, Any] = {
        "protocol": "kafka-secure" if protocol in {"SSL", "SASL_SSL"} else "kafka",
        "description": f"Kafka, security protocol {protocol} "
                       "(RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS, RELAYFLOW_KAFKA_SECURITY_PROTOCOL).",
    }
    if schemes:
        server["security"] = [_ref("components", "securitySchemes", name) for name in schemes]
    if settings.schema_registry_url is not None:
        parts = urllib.parse.urlsplit(settings.schema_registry_url)
        # Credentials stay out of the document: only where the registry is.
        public = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        server["bindings"] = _binding(schemaRegistryUrl=public, schemaRegistryVendor="confluent")
    hosts = [host.strip() for host in settings.kafka_bootstrap_servers.split(",") if host.strip()]
    if len(hosts) == 1:
        return {"kafka": {"host": hosts[0], **server}}, schemes
    return {f"kafka-{n}": {"host": host, **server} for n, host in enumerate(hosts, 1)}, schemes


def _header_schemas() -> dict[str, Any]:
    return {
        _EVENT_HEADERS: {
            "type": "object",
            "description": "The contract headers of an event (Kafka header values are UTF-8).",
            "properties": _HEADERS,
        },
        _DEAD_LETTER_HEADERS: {
            "type": "object",
            "description": "The original record's headers, untouched and in order (usually the "
                           "event headers, but whatever came), followed by these.",
            "properties": _DLQ_HEADERS | _BOUNDED_COPY_HEADERS,
            "required": list(_DLQ_HEADERS),
        },
        _CLAIM_CHECK_HEADERS: {
            "type": "object",
            "description": "On an outcome too large for its topic: where its value is. The "
                           "value is the bytes the record would have carried, kept in the "
                           "claim-check store for RELAYFLOW_CLAIM_CHECK_OUTCOME_RETENTION_HOURS.",
            "properties": _CLAIM_CHECK,
            "dependencies": {CLAIM_CHECK_KEY: [CLAIM_CHECK_BYTES, CLAIM_CHECK_SHA256,
                                               CLAIM_CHECK_CONTENT_TYPE]},
        },
    }


class _Contract:
    """The data the document is made of, looked up once."""

    def __init__(self, app: Application, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        known: tuple[type[Event], ...] = (*app.event_types, RequestFailed)
        self.models = {model.avro_name: model for model in known}
        self.avsc = {**load_schemas(FRAMEWORK_SCHEMA_FOLDER), **load_schemas(app.schema_folder)}
        self.topics = app.all_topics()
        self.routes: dict[str, list[Route]] = {}
        for route in app.routes:
            self.routes.setdefault(route.topic, []).append(route)
        self.dlqs = {dlq_topic(topic.name): topic for topic in self.topics if topic.inbound}
        # Each event's format and its schema as its source file holds it (.avsc, .json, .proto).
        self.formats = {name: format_of(model) for name, model in self.models.items()}
        codec = app.codec() if set(self.formats.values()) != {SchemaFormat.AVRO} else None
        self.schemas: dict[str, Any] = {
            name: self.avsc[name] if fmt is SchemaFormat.AVRO or codec is None
            else codec.json.schema_of(name) if fmt is SchemaFormat.JSON
            else codec.protobuf.schema_text[name]
            for name, fmt in self.formats.items()
            if fmt is not SchemaFormat.AVRO or name in self.avsc}
        missing = sorted({name for topic in self.topics for name in self.events(topic)}
                         - (self.models.keys() & self.schemas.keys()))
        if missing:
            raise ValueError(f"application {app.name!r}: no event type with an .avsc file for "
                             f"{', '.join(missing)}")
        self.messages: dict[str, Any] = _messages(self)

    def events(self, topic: Topic) -> list[str]:
        """Avro full names of the events on a topic: its table entry, then unlisted routed ones."""
        routed = [route.event_type.avro_name for route in self.routes.get(topic.name, ())]
        framework = [RequestFailed.avro_name] if topic.replies else []
        return list(dict.fromkeys([*topic.events, *routed, *framework]))

    def outbound_only(self, event: str) -> bool:
        """True when only outbound topics carry the event (relayflow writes it)."""
        return all(not topic.inbound for topic in self.topics if event in self.events(topic))


def _messages(contract: _Contract) -> dict[str, Any]:
    """A message per event type on any topic, its payload the ``.avsc`` schema."""
    registry = contract.settings.schema_registry_url is not None
    found: dict[str, Any] = {}
    for topic in contract.topics:
        for name in contract.events(topic):
            if name in found:
                continue
            model, schema = contract.models[name], contract.schemas[name]
            outcome = contract.outbound_only(name)
            kafka: dict[str, Any] = {"key": _key_schema(model)}
            if registry and outcome:
                strategy = contract.settings.schema_registry_subject_strategy
                kafka |= {"schemaIdLocation": "payload", "schemaIdPayloadEncoding": "confluent",
                          "schemaLookupStrategy": _LOOKUP_STRATEGIES[strategy]}
            doc = schema.get("doc", schema.get("description")) if isinstance(schema, dict) \
                else None
            found[name] = {
                "name": name,
                "title": name.rsplit(".", 1)[-1],
                "summary": (doc or model.__doc__ or "").strip().split("\n")[0],
                "contentType": contract.formats[name].content_type,
                "correlationId": _ref("components", "correlationIds", _CORRELATION),
                "headers": {"allOf": [
                    _ref("components", "schemas", _EVENT_HEADERS),
                    {"type": "object", "properties": {EVENT_TYPE: {"const": name}},
                     "required": list(_OUTCOME_HEADERS) if outcome else []},
                    *([_ref("components", "schemas", _CLAIM_CHECK_HEADERS)] if outcome else []),
                ]},
                "payload": _ref("components", "schemas", name),
                "bindings": _binding(**kafka),
            }
    return found


def _topic_binding(topic: Topic) -> dict[str, Any]:
    fields: dict[str, Any] = {"topic": topic.name, "partitions": topic.partitions}
    if topic.compacted:
        fields["topicConfiguration"] = {"cleanup.policy": ["compact"]}
    return _binding(**fields)


def _operation(action: str, channel: str, messages: Sequence[str], title: str,
               description: str, **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "channel": _ref("channels", channel),
        "title": title,
        "description": description,
        "messages": [_ref("channels", channel, "messages", message) for message in messages],
        **extra,
    }


class _Channels:
    """Channels and operations, topic by topic."""

    def __init__(self, contract: _Contract) -> None:
        self.contract = contract
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}

    def add(self, topic: Topic, description: str, messages: Mapping[str, Any]) -> None:
        self.channels[topic.name] = {"address": topic.name, "title": topic.name,
                                     "description": description, "messages": dict(messages),
                                     "bindings": _topic_binding(topic)}

    def input(self, topic: Topic) -> None:
        group = self.contract.settings.kafka_consumer_group
        events = self.contract.events(topic)
        routes = self.contract.routes.get(topic.name, [])
        self.add(topic, f"Input: events the bridge consumes (consumer group `{group}`) and turns "
                        f"into workflow commands. Bad ones go to `{dlq_topic(topic.name)}`.",
                 {name: _ref("components", "messages", name) for name in events})
        routed = {route.event_type.avro_name for route in routes}
        unrouted = [f"`{name}`" for name in events if name not in routed]
        self.operations[f"receive-{topic.name}"] = _operation(
            "receive", topic.name, events, f"The bridge consumes {topic.name}",
            "Each event becomes the workflow command its route (`x-relayflow-routes`) names; "
            "the offset is committed once Temporal acknowledged it."
            + (f" No route: {', '.join(unrouted)} (dead-lettered, `no-route`)." if unrouted
               else ""),
            bindings=_binding(groupId={"type": "string", "enum": [group]}),
            **{"x-relayflow-routes": [
                {"event-type": r.event_type.avro_name, "action": str(r.action),
                 "workflow": r.workflow, "workflow-id": r.workflow_id,
                 **({"signal": r.signal} if r.signal else {}),
                 **({"update": r.update, "reply-topic": r.reply_topic,
                     "reply-within-seconds": r.reply_within.total_seconds()}
                    if r.action in UPDATING else {})} for r in routes]},
        )
        for route in routes:
            if route.action in UPDATING:
                self.request(topic, route)

    def request(self, topic: Topic, route: Route) -> None:
        """A request/reply pair: the route's event in, its reply (or ``RequestFailed``) out."""
        name, reply = route.event_type.avro_name, route.reply_topic or ""
        replies = self.contract.events(next(t for t in self.contract.topics if t.name == reply))
        reasons = ", ".join(f"`{reason}`" for reason in ReplyReason)
        self.operations[f"request-{topic.name}-{route.event_type.__name__}"] = _operation(
            "receive", topic.name, [name], f"{route.event_type.__name__} is a request",
            f"The bridge runs update `{route.update}` of `{route.workflow}` (update id: the "
            f"event id) and replies within {route.reply_within.total_seconds():g} s on "
            f"`{reply}`, or on the reply topic the `{REPLY_TO}` header names, with the "
            f"request's key and `{CORRELATION_ID}`, `{CAUSATION_ID}` = the request's event id. "
            f"No result: `{RequestFailed.avro_name}` with `reason` one of {reasons}. The "
            "offset is committed once the reply is on Kafka.",
            reply={
                "address": {"location": f"$message.header#/{REPLY_TO}",
                            "description": f"The `{REPLY_TO}` header if present (a declared "
                                           f"reply topic only), else `{reply}`."},
                "channel": _ref("channels", reply),
                "messages": [_ref("channels", reply, "messages", m) for m in replies],
            },
        )

    def replies(self, topic: Topic) -> None:
        events = self.contract.events(topic)
        self.add(topic, "Replies: the bridge's answer to each request (an update route), keyed "
                        "by the request's key, with its `correlation-id`. Reply event ids are "
                        "deterministic (from the request's event id): a redelivered request "
                        "is answered again with the same id.",
                 {name: _ref("components", "messages", name) for name in events})
        self.operations[f"send-{topic.name}"] = _operation(
            "send", topic.name, events, f"The bridge replies on {topic.name}",
            "Written (and acknowledged by all in-sync replicas) before the request's offset "
            "is committed.")

    def outcome(self, topic: Topic) -> None:
        events = self.contract.events(topic)
        self.add(topic, "Outcome: events the workflows publish. Event ids are deterministic "
                        "(from the workflow id and step): drop a duplicate by `event-id`.",
                 {name: _ref("components", "messages", name) for name in events})
        self.operations[f"send-{topic.name}"] = _operation(
            "send", topic.name, events, f"The worker publishes to {topic.name}",
            "The `publish_outcome` activity writes each outcome once the workflow reached it; "
            "Temporal retries it, so a subscriber may see a duplicate.")

    def dead_letters(self, topic: Topic, source: Topic) -> None:
        messages: dict[str, Any] = {}
        for name in self.contract.events(source):
            message = self.contract.messages[name]
            messages[name] = {
                "name": name, "title": f"{message['title']} (dead-lettered)",
                "summary": f"`{message['title']}` from `{source.name}`, dead-lettered.",
                "contentType": message["contentType"],
                "headers": _ref("components", "schemas", _DEAD_LETTER_HEADERS),
                "payload": message["payload"],
                "bindings": _binding(key=message["bindings"]["kafka"]["key"]),
            }
        messages[_UNREADABLE] = {
            "name": _UNREADABLE, "title": "Unreadable record (dead-lettered)",
            "summary": f"A record of `{source.name}` that is no event at all (`empty`, "
                       "`unknown-framing`, `unknown-schema`, `malformed-avro`, ...).",
            "contentType": _BYTES,
            "headers": _ref("components", "schemas", _DEAD_LETTER_HEADERS),
            "payload": {"type": "string", "format": "binary",
                        "description": "The original value, byte for byte."},
            "bindings": _binding(key={"description": "The original key, byte for byte."}),
        }
        self.add(topic, f"Dead letters of `{source.name}`: records that can never become a "
                        "workflow command, in their source partition with their key, value "
                        "and headers untouched, plus the `dlq-*` headers.", messages)
        self.operations[f"send-{topic.name}"] = _operation(
            "send", topic.name, list(messages), f"The bridge dead-letters to {topic.name}",
            "Written (and acknowledged by all in-sync replicas) before the source offset is "
            "committed. `relayflow dlq` lists, shows, replays and releases them.")

    def parked_keys(self, topic: Topic) -> None:
        key = {"type": "string", "description": "`<input topic>/<record key>`."}
        self.add(topic, "The bridge's parked keys (compacted): the latest value of a key is "
                        "its state, a tombstone releases it. Every bridge of the group follows "
                        "it from the start.", {
            "park": {"name": _PARK_ENTRY, "title": "A parked key",
                     "summary": "Why the key is parked and where its dead letters start.",
                     "contentType": _JSON, "payload": _ref("components", "schemas", _PARK_ENTRY),
                     "bindings": _binding(key=key)},
            "release": {"name": "release", "title": "A released key (tombstone)",
                        "summary": "The key flows again.", "contentType": _JSON,
                        "payload": {"type": "null"}, "bindings": _binding(key=key)},
        })
        both = ["park", "release"]
        self.operations[f"send-{topic.name}"] = _operation(
            "send", topic.name, both, "The bridge parks keys; `relayflow dlq` releases them",
            "A park is written and read back before its dead letter counts as done.")
        self.operations[f"receive-{topic.name}"] = _operation(
            "receive", topic.name, both, "Every bridge follows the parked keys",
            "Read from the beginning by each bridge process, without a consumer group.")


def asyncapi_document(app: Application, settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic an application's bridge and worker use.

    Args:
        app: The application (its topics, routes, event types and ``.avsc`` files).
        settings: Brokers, security, consumer group, schema registry and limits;
            ``Settings.model_construct()`` for the defaults.

    Returns:
        The document as plain data (``to_yaml`` / ``to_json`` write it).

    Raises:
        ValueError: A topic names an event the application has no model or
            ``.avsc`` file for.
    """
    contract = _Contract(app, settings)
    built = _Channels(contract)
    for topic in contract.topics:
        if topic.inbound:
            built.input(topic)
        elif topic.name in contract.dlqs:
            built.dead_letters(topic, contract.dlqs[topic.name])
        elif topic.name == PARKED_KEYS:
            built.parked_keys(topic)
        elif topic.replies:
            built.replies(topic)
        else:
            built.outcome(topic)
    servers, schemes = _servers(settings)
    park_entry = ParkEntry.model_json_schema()
    park_entry["description"] = (ParkEntry.__doc__ or "").strip().split("\n")[0]
    components: dict[str, Any] = {
        "schemas": {
            **_header_schemas(),
            _PARK_ENTRY: park_entry,
            **{name: {"schemaFormat": contract.formats[name].asyncapi_format,
                      "schema": contract.schemas[name]}
               for name in contract.messages},
        },
        "messages": contract.messages,
        "correlationIds": {_CORRELATION: {
            "description": "Every event of one business flow shares it.",
            "location": f"$message.header#/{CORRELATION_ID}"}},
    }
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": f"{app.name} Kafka contract", "version": version("relayflow"),
                 "description": _description(app, settings)},
        "defaultContentType": AVRO_CONTENT_TYPE,
        "servers": servers,
        "channels": built.channels,
        "operations": built.operations,
        "components": components,
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so descriptions read as written; no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        """Shared values (a key schema used twice) are written out each time."""
        del data
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)

YAML_HEADER = ("# Generated by `relayflow asyncapi` from the application's topics, routes and "
               ".avsc files; do not edit.\n")


def to_yaml(document: Mapping[str, Any]) -> str:
    """The document as YAML, keys in the order built, behind a do-not-edit comment."""
    return YAML_HEADER + yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False,
                                   allow_unicode=True, width=100)


def to_json(document: Mapping[str, Any]) -> str:
    """The document as indented JSON."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
