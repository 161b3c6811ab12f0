"""A small schema registry speaking the Confluent REST API, for tests.

No Confluent-compatible registry can be installed on the test machines (the
Confluent one is not on Maven Central, Karapace is not on PyPI), so the tests
run this one: the two calls relayflow makes, answered as the Confluent
documentation specifies (ids global across subjects, the same schema twice
gets the same id, 404 with ``error_code`` 40403 for an unknown id), over real
HTTP on a real socket. It can be told to fail, to stage registry outages.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RegistryServer", "registry_server"]

_REGISTER = re.compile(r"^/subjects/(?P<subject>[^/]+)/versions$")
_BY_ID = re.compile(r"^/schemas/ids/(?P<id>\d+)$")


class RegistryServer:
    """The registry's state and the knobs tests turn.

    Attributes:
        url: Base URL (``http://127.0.0.1:<port>``).
        requests: Requests answered so far, by ``"<METHOD> <kind>"`` where kind
            is ``register`` or ``by-id`` (failed ones included).
        failing: HTTP methods answered with 503 while set (an outage).
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[int, dict[str, Any]] = {}
        self._subjects: dict[str, list[int]] = {}
        self._auth = None if credentials is None else (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode())
        self.requests: Counter[str] = Counter()
        self.failing: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def add(self, schema: dict[str, Any] | str, schema_type: str = "AVRO") -> int:
        """Store a schema directly (as another team's producer would have); its id."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return self._register("_direct", {"schema": text, "schemaType": schema_type})

    def _register(self, subject: str, body: dict[str, Any]) -> int:
        entry = {"schema": body["schema"], "schemaType": body.get("schemaType", "AVRO")}
        same = _identity(entry)  # raises ValueError for an Avro schema that is not JSON
        with self._lock:
            found = next((i for i, s in self._schemas.items() if _identity(s) == same), None)
            schema_id = found if found is not None else len(self._schemas) + 1
            self._schemas[schema_id] = entry
            versions = self._subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def subjects(self) -> dict[str, list[int]]:
        """Subject -> schema ids registered under it, oldest first."""
        with self._lock:
            return {s: list(ids) for s, ids in self._subjects.items() if s != "_direct"}

    def answer(self, method: str, path: str, authorization: str | None,
               body: bytes) -> tuple[int, dict[str, Any]]:
        """Status and JSON body for one request (what the HTTP handler sends)."""
        register, by_id = _REGISTER.match(path), _BY_ID.match(path)
        match = register if method == "POST" else by_id if method == "GET" else None
        if match is None:
            return HTTPStatus.NOT_FOUND, {"error_code": 404, "message": "no route"}
        with self._lock:  # handler threads run at once
            self.requests[f"{method} {'register' if method == 'POST' else 'by-id'}"] += 1
        if method in self.failing:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error_code": 50302, "message": "outage"}
        if self._auth is not None and authorization != self._auth:
            return HTTPStatus.UNAUTHORIZED, {"error_code": 401, "message": "Unauthorized"}
        if method == "POST":
            return self._answer_register(match["subject"], body)
        return self._answer_by_id(int(match["id"]))

    def _answer_register(self, subject: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return HTTPStatus.OK, {"id": self._register(subject, json.loads(body))}
        except (ValueError, KeyError, TypeError) as error:
            return HTTPStatus.UNPROCESSABLE_ENTITY, {"error_code": 42201,
                                                     "message": f"Invalid schema: {error}"}

    def _answer_by_id(self, schema_id: int) -> tuple[int, dict[str, Any]]:
        with self._lock:
            entry = self._schemas.get(schema_id)
        if entry is None:
            return HTTPStatus.NOT_FOUND, {"error_code": 40403,
                                          "message": f"Schema {schema_id} not found"}
        if entry["schemaType"] == "AVRO":  # Confluent leaves the type out for Avro
            return HTTPStatus.OK, {"schema": entry["schema"]}
        return HTTPStatus.OK, dict(entry)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet: pytest shows failures, not every request

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = registry.answer(self.command, self.path,
                                                 self.headers.get("Authorization"), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815 - the names http.server dispatches to

        return Handler


def _identity(entry: dict[str, Any]) -> tuple[str, Any]:
    # Avro schemas are the same schema whatever their whitespace; others compare as text.
    text = entry["schema"]
    return entry["schemaType"], json.loads(text) if entry["schemaType"] == "AVRO" else text


@contextmanager
def registry_server(credentials: tuple[str, str] | None = None) -> Iterator[RegistryServer]:
    """A running registry for the length of the block."""
    server = RegistryServer(credentials)
    server.start()
    try:
        yield server
    finally:
        server.stop()
