"""Schema registries for tests: a real one (Apicurio) and a small one written here.

``apicurio_registry`` runs Apicurio Registry, a real Confluent-compatible
registry (``relayflow.devstack.registry``), once per session: the client's
conformance tests (registration, lookup by id, subject naming, compatibility)
run against it. ``RegistryServer`` answers the two calls relayflow makes as
the Confluent documentation specifies (ids global across subjects, the same
schema twice gets the same id, 404 with ``error_code`` 40403 for an unknown
id), over real HTTP on a real socket; it stays for what a real registry cannot
be told to do on cue: fail (outages), count requests, demand credentials.
Both offer ``url``, ``add`` and ``subjects``, so a test can run against either.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.registry import start_registry, stop_registry

__all__ = ["ApicurioRegistry", "Registry", "RegistryServer", "apicurio_registry",
           "registry_server"]

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
        # stop()'s shutdown() waits for serve_forever to look again: every 20 ms, not 0.5 s.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

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


class Registry(Protocol):
    """What a test needs of either registry."""

    url: str

    def add(self, schema: dict[str, Any] | str, schema_type: str = "AVRO") -> int:
        """Store a schema as another team's producer would have; its id."""
        ...

    def subjects(self) -> dict[str, list[int]]:
        """Subject -> schema ids registered under it, oldest first."""
        ...


class ApicurioRegistry:
    """A running Apicurio Registry, driven over its Confluent-compatible API.

    The calls here are the registry's setup and inspection (what an operator
    or another team does), made with plain HTTP, not with the client under test.

    Attributes:
        url: Base URL of the Confluent-compatible API.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def add(self, schema: dict[str, Any] | str, schema_type: str = "AVRO") -> int:
        """Register a schema under a subject of its own (as another team would); its id."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        subject = f"_direct-{len(self._call('GET', '/subjects'))}"
        answer = self._call("POST", f"/subjects/{subject}/versions",
                            {"schema": text, "schemaType": schema_type})
        return int(answer["id"])

    def subjects(self) -> dict[str, list[int]]:
        """Subject -> schema ids registered under it, oldest first (``_direct`` ones left out)."""
        found = {}
        for subject in self._call("GET", "/subjects"):
            if subject.startswith("_direct"):
                continue
            quoted = urllib.parse.quote(subject, safe="")
            found[subject] = [self._call("GET", f"/subjects/{quoted}/versions/{v}")["id"]
                              for v in self._call("GET", f"/subjects/{quoted}/versions")]
        return found

    def set_compatibility(self, subject: str, level: str) -> None:
        """The subject's compatibility level (``BACKWARD``, ``NONE``, ...)."""
        quoted = urllib.parse.quote(subject, safe="")
        self._call("PUT", f"/config/{quoted}", {"compatibility": level})

    def reset(self) -> None:
        """Delete every subject for good, so a test starts from an empty registry."""
        for subject in self._call("GET", "/subjects"):
            quoted = urllib.parse.quote(subject, safe="")
            self._call("DELETE", f"/subjects/{quoted}")
            self._call("DELETE", f"/subjects/{quoted}?permanent=true")


@contextmanager
def apicurio_registry(data_dir: Path) -> Iterator[ApicurioRegistry]:
    """Apicurio Registry on ``RELAYFLOW_TEST_REGISTRY_PORT`` (default: a free port), stopped after.

    Args:
        data_dir: Its log and pid record.
    """
    settings = Settings(data_dir=data_dir)
    port = int(os.environ.get("RELAYFLOW_TEST_REGISTRY_PORT") or free_port())
    url = start_registry(settings, port)
    try:
        yield ApicurioRegistry(url)
    finally:
        stop_registry(settings)
