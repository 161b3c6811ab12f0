"""``relayflow asyncapi --serve``: the AsyncAPI document as a self-contained HTML page.

FastStream's docs page and AsyncAPI's own viewer load the AsyncAPI React
component from a CDN, which a machine without internet access (or a
locked-down operator's laptop) cannot reach. This page is rendered on the
server from the document itself (Jinja2, autoescaped; descriptions are
CommonMark through markdown-it with raw HTML off), needs no script and no
network, and links the document as YAML and JSON for any AsyncAPI tool.
The standard library's threading HTTP server is enough to show one page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from relayflow.asyncapi.document import AVRO_SCHEMA_FORMAT, to_json, to_yaml
from relayflow.observability.http_server import BackgroundHTTPServer

__all__ = ["AsyncApiSite", "asyncapi_html"]

log = logging.getLogger(__name__)

_MARKDOWN = MarkdownIt("commonmark", {"html": False})


@dataclass(frozen=True, slots=True)
class Row:
    """One header, property or Avro field, as the page lists it."""

    name: str
    type: str
    required: bool = False
    default: str = ""
    description: Markup = field(default_factory=Markup)


@dataclass(frozen=True, slots=True)
class Table:
    """A schema as rows (a record, an object), with its title."""

    title: str
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class Payload:
    """A message payload: its format, its tables (records nested in it too) and raw schema."""

    schema_format: str
    tables: list[Table]
    raw: str


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message of a channel."""

    id: str
    name: str
    title: str
    summary: Markup
    content_type: str
    key: Markup
    headers: list[Row]
    payload: Payload


@dataclass(frozen=True, slots=True)
class OperationView:
    """Who sends or receives on a channel."""

    id: str
    action: str
    title: Markup
    description: Markup
    group: str
    routes: list[Mapping[str, str]]


@dataclass(slots=True)
class ChannelView:
    """One topic."""

    id: str
    address: str
    description: Markup
    partitions: int | None
    compacted: bool
    operations: list[OperationView] = field(default_factory=list)
    messages: list[MessageView] = field(default_factory=list)


def _markdown(text: str) -> Markup:
    return Markup(_MARKDOWN.render(text))  # noqa: S704 - markdown-it escapes, raw HTML is off


def _inline(text: str) -> Markup:
    return Markup(_MARKDOWN.renderInline(text))  # noqa: S704 - as above


def _described(text: str) -> Markup:
    # One line stays inline in its table cell; several (a list of values) are blocks.
    return _markdown(text) if "\n" in text else _inline(text)


class _Reader:
    """Walks the document, following its ``$ref`` pointers."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any) -> Any:
        while isinstance(node, Mapping) and "$ref" in node:
            found: Any = self.document
            for part in str(node["$ref"]).removeprefix("#/").split("/"):
                found = found[part.replace("~1", "/").replace("~0", "~")]
            node = found
        return node

    def object_rows(self, schema: Any) -> list[Row]:
        """The properties of a JSON Schema object, ``allOf`` parts merged."""
        schema = self.resolve(schema)
        properties: dict[str, dict[str, Any]] = {}
        required: set[str] = set()
        for part in [schema, *(self.resolve(p) for p in schema.get("allOf", ()))]:
            for name, value in part.get("properties", {}).items():
                properties[name] = {**properties.get(name, {}), **self.resolve(value)}
            required.update(part.get("required", ()))
        return [Row(name, _json_type(value), name in required,
                    json.dumps(value["default"]) if "default" in value else "",
                    _described(value.get("description", ""))) for name, value in properties.items()]

    def payload(self, node: Any) -> Payload:
        schema = self.resolve(node)
        if schema.get("schemaFormat") == AVRO_SCHEMA_FORMAT:
            return Payload(AVRO_SCHEMA_FORMAT, _avro_tables(schema["schema"]),
                           json.dumps(schema["schema"], indent=2))
        if isinstance(schema.get("schema"), str):  # a Protobuf (or other text) schema
            return Payload(schema.get("schemaFormat", ""), [], schema["schema"])
        if "schemaFormat" in schema:  # a JSON Schema event's schema, in its multi-format wrapper
            schema = schema["schema"]
        tables = [Table(schema.get("title", "object"), self.object_rows(schema))] \
            if schema.get("type") == "object" else []
        return Payload("JSON Schema", tables, json.dumps(schema, indent=2))

    def message(self, message_id: str, node: Any) -> MessageView:
        message = self.resolve(node)
        key = message.get("bindings", {}).get("kafka", {}).get("key", {})
        key_text = _inline(" ".join(filter(None, [f"`{_json_type(key)}`" if key.get("type") else "",
                                                  key.get("description", "")])))
        return MessageView(
            id=message_id, name=message.get("name", message_id),
            title=message.get("title", message_id), summary=_inline(message.get("summary", "")),
            content_type=message.get("contentType", self.document.get("defaultContentType", "")),
            key=key_text,
            headers=self.object_rows(message["headers"]) if "headers" in message else [],
            payload=self.payload(message["payload"]),
        )


def _json_type(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"= {json.dumps(schema['const'])}"
    kind = schema.get("type") or " | ".join(_json_type(s) for s in schema.get("anyOf", ()))
    details = [f"{schema['format']}" if "format" in schema else "",
               f"max {schema['maxLength']} chars" if "maxLength" in schema else "",
               f"/{schema['pattern']}/" if "pattern" in schema else ""]
    return " ".join([str(kind or "any"), *filter(None, details)])


def _avro_type(schema: Any, nested: list[Mapping[str, Any]]) -> str:  # noqa: PLR0911 - a case each
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " | ".join(_avro_type(branch, nested) for branch in schema)
    kind = schema["type"]
    if "logicalType" in schema:
        return f"{_avro_type(kind, nested)} ({schema['logicalType']})"
    if kind in {"record", "error"}:
        nested.append(schema)
        return f"record {schema['name']}"
    if kind == "array":
        return f"array<{_avro_type(schema['items'], nested)}>"
    if kind == "map":
        return f"map<{_avro_type(schema['values'], nested)}>"
    if kind == "enum":
        return f"enum {schema['name']} {{{', '.join(schema['symbols'])}}}"
    if kind == "fixed":
        return f"fixed {schema['name']}[{schema['size']}]"
    return _avro_type(kind, nested)


def _avro_tables(schema: Mapping[str, Any]) -> list[Table]:
    """The record and every record nested in it, each as a table of its fields."""
    tables: list[Table] = []
    pending: list[Mapping[str, Any]] = [schema]
    while pending:
        record = pending.pop(0)
        nested: list[Mapping[str, Any]] = []
        rows = [Row(f["name"], _avro_type(f["type"], nested), "default" not in f,
                    json.dumps(f["default"]) if "default" in f else "", _inline(f.get("doc", "")))
                for f in record.get("fields", ())]
        name = ".".join(filter(None, [record.get("namespace"), record["name"]]))
        tables.append(Table(name, rows))
        pending.extend(nested)
    return tables


def _channels(reader: _Reader) -> list[ChannelView]:
    document = reader.document
    views: dict[str, ChannelView] = {}
    for channel_id, node in document.get("channels", {}).items():
        channel = reader.resolve(node)
        kafka = channel.get("bindings", {}).get("kafka", {})
        views[channel_id] = ChannelView(
            id=channel_id, address=channel.get("address") or channel_id,
            description=_markdown(channel.get("description", "")),
            partitions=kafka.get("partitions"),
            compacted="compact" in kafka.get("topicConfiguration", {}).get("cleanup.policy", ()),
            messages=[reader.message(message_id, message)
                      for message_id, message in channel.get("messages", {}).items()],
        )
    for operation_id, operation in document.get("operations", {}).items():
        channel_id = operation["channel"]["$ref"].rpartition("/")[2].replace("~1", "/")
        group = operation.get("bindings", {}).get("kafka", {}).get("groupId", {})
        views[channel_id].operations.append(OperationView(
            id=operation_id, action=operation["action"], title=_inline(operation.get("title", "")),
            description=_markdown(operation.get("description", "")),
            group=", ".join(group.get("enum", ())),
            routes=operation.get("x-relayflow-routes", []),
        ))
    return list(views.values())


_ENVIRONMENT = Environment(loader=PackageLoader("relayflow.asyncapi", "templates"),
                           autoescape=select_autoescape(default=True), keep_trailing_newline=True)


def asyncapi_html(document: Mapping[str, Any]) -> str:
    """The document as one HTML page: servers, then each channel's operations and messages."""
    reader = _Reader(document)
    info = document["info"]
    return _ENVIRONMENT.get_template("asyncapi.html").render(
        title=info["title"], version=info["version"], asyncapi=document["asyncapi"],
        description=_markdown(info.get("description", "")),
        servers=document.get("servers", {}), channels=_channels(reader),
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], pages: Mapping[str, tuple[str, bytes]]) -> None:
        super().__init__(address, _Handler)
        self.pages = pages


class _Handler(BaseHTTPRequestHandler):
    server_version = "relayflow-asyncapi"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        """Access lines at debug level."""
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        """The page, or the document as YAML or JSON."""
        pages = cast("_Server", self.server).pages
        found = pages.get(self.path.split("?", 1)[0])
        status = HTTPStatus.OK if found else HTTPStatus.NOT_FOUND
        content_type, body = found or ("text/plain; charset=utf-8",
                                       b"not found: / (HTML), /asyncapi.yaml, /asyncapi.json\n")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class AsyncApiSite(BackgroundHTTPServer):
    """Serves one AsyncAPI document: ``/`` as HTML, ``/asyncapi.yaml``, ``/asyncapi.json``.

    Bound as soon as it is built.

    Args:
        document: The AsyncAPI document (``relayflow.asyncapi.document.asyncapi_document``).
        host: Interface to listen on.
        port: TCP port (0: any free one; see ``url``).
    """

    def __init__(self, document: Mapping[str, Any], *, host: str = "127.0.0.1",
                 port: int = 8090) -> None:
        html = asyncapi_html(document).encode()
        super().__init__(_Server((host, port), {
            "/": ("text/html; charset=utf-8", html),
            "/index.html": ("text/html; charset=utf-8", html),
            "/asyncapi.yaml": ("application/yaml; charset=utf-8", to_yaml(document).encode()),
            "/asyncapi.json": ("application/json", to_json(document).encode()),
        }), name="asyncapi-site", path="/")
