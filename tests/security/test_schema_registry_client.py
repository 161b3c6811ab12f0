"""Attacks on the schema registry client, over real HTTP on real sockets.

Two servers play the parts: the registry relayflow is configured with (basic
auth in its URL) and another host, on another address, that an attacker (or a
hijacked proxy) redirects to. The attacks: a redirect meant to collect the
registry's credentials (or to serve a schema of the attacker's choosing), and a
registry that answers 503 forever. Each test asserts the refusal and that
nothing changed: the other host saw no request, no schema was cached, no
record was dead-lettered or marked done.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bridge.consumer import FetchProcessor
from bridge.decoding import Decoder
from bridge.retry import Backoff
from relayflow.config.settings import Settings
from relayflow.kafka.schema_registry import (
    REGISTRY_ATTEMPTS,
    REGISTRY_BACKOFF,
    HttpSchemaRegistry,
    RegistryRedirectRefused,
    RegistryUnavailable,
    schema_registry,
)
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import SCHEMA_FOLDER, OrderPlaced
from relayflow.reference.topics import ORDERS_EVENTS
from schemas.codec import load_schemas
from schemas.formats import FormatCodec
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, Record
from tests.helpers.support import FAST

USER, PASSWORD = "svc-orders", "s3cr3t-registry-pw"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SCHEMA = json.dumps(load_schemas(SCHEMA_FOLDER)[OrderPlaced.avro_name])
# A Confluent-framed record naming registry id 1 (the body is never reached).
CONFLUENT_RECORD = b"\x00" + struct.pack(">I", 1) + b"\x02"
# What one call may take against a registry that answers at once: the delays
# between its attempts, each between half and all of its ceiling.
_B = REGISTRY_BACKOFF
ONE_CALL_MAX = sum(min(_B.maximum, _B.initial * _B.multiplier ** i)
                   for i in range(REGISTRY_ATTEMPTS - 1))
ONE_CALL_MIN = ONE_CALL_MAX / 2

CALLS: dict[str, Callable[[HttpSchemaRegistry], object]] = {
    "schema_by_id": lambda client: client.schema_by_id(1),
    "register": lambda client: client.register(OrderPlaced.avro_name, SCHEMA),
}
"""The two calls relayflow makes, read and write."""

Answer = tuple[int, dict[str, str], bytes]
Registry = Callable[[str, str], Answer]
"""How the registry answers: given the other host's URL and the request's path."""


class Host:
    """An HTTP server that records every request and answers as told.

    Attributes:
        url: ``http://<address>:<port>``.
        seen: ``(method, path, Authorization header or None)`` of every request.
    """

    def __init__(self, address: str, answer: Callable[[str, str], Answer]) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    host.seen.append((self.command, self.path, self.headers.get("Authorization")))
                status, headers, body = answer(self.command, self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve  # noqa: N815 - the names http.server dispatches to

        self._server = ThreadingHTTPServer((address, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{address}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def hosts(registry: Registry, other: Callable[[str, str], Answer]) -> Iterator[tuple[Host, Host]]:
    """The registry on 127.0.0.1 and another host on 127.0.0.2, each on its own port."""
    other_host = Host("127.0.0.2", other)
    registry_host = Host("127.0.0.1", lambda _method, path: registry(other_host.url, path))
    try:
        yield registry_host, other_host
    finally:
        registry_host.close()
        other_host.close()


def schema_answer(_method: str, _path: str) -> Answer:
    """A registry's answer to "schema by id" (and, as the attacker, any question)."""
    return 200, {"Content-Type": "application/vnd.schemaregistry.v1+json"}, json.dumps(
        {"schema": SCHEMA, "id": 1}).encode()


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@")


def redirect(status: int) -> Registry:
    return lambda other, path: (status, {"Location": other + path}, b"")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", CALLS)
def test_a_redirect_to_another_host_never_carries_the_credentials(status: int, call: str) -> None:
    with hosts(redirect(status), schema_answer) as (registry, other):
        client = HttpSchemaRegistry(with_credentials(registry.url))
        with pytest.raises(RegistryRedirectRefused) as refused:
            CALLS[call](client)
        # The other host was never asked anything, with or without credentials.
        assert other.seen == []
        assert [auth for *_, auth in registry.seen] == [AUTHORIZATION]  # one request: not retried
    message = str(refused.value)
    assert f"HTTP {status} redirect to {other.url}/" in message
    assert "refused" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}",        # same host, another port
    "https://127.0.0.1:{port}",       # another scheme
    "http://localhost:{port}",        # another name for the same machine is another host
    "http://attacker:pw@127.0.0.2:{port}",
])
def test_any_other_origin_is_refused(target: str) -> None:
    def registry(other: str, path: str) -> Answer:
        return 302, {"Location": target.format(port=other.rsplit(":", 1)[1]) + path}, b""

    with hosts(registry, schema_answer) as (host, other):
        with pytest.raises(RegistryRedirectRefused) as refused:
            HttpSchemaRegistry(with_credentials(host.url)).schema_by_id(1)
        assert other.seen == []
    assert ":pw@" not in str(refused.value)


def test_a_redirect_within_the_registry_is_followed_with_its_credentials() -> None:
    # The positive control: same scheme, host and port (a registry behind a proxy that
    # moved its API): followed, credentials kept, so the refusals above are about origin.
    def registry(_other: str, path: str) -> Answer:
        if path.startswith("/v1/"):
            return schema_answer("GET", path)
        return 301, {"Location": "/v1" + path}, b""

    with hosts(registry, schema_answer) as (host, other):
        assert HttpSchemaRegistry(with_credentials(host.url)).schema_by_id(1) == SCHEMA
        assert host.seen == [("GET", "/schemas/ids/1", AUTHORIZATION),
                             ("GET", "/v1/schemas/ids/1", AUTHORIZATION)]
        assert other.seen == []


def test_a_redirected_write_is_refused_even_within_the_registry() -> None:
    # urllib would turn a redirected POST into a GET without its body.
    with hosts(lambda _other, path: (302, {"Location": "/v1" + path}, b""),
               schema_answer) as (registry, _other_host):
        with pytest.raises(RegistryRedirectRefused, match="POST would lose its body"):
            HttpSchemaRegistry(registry.url).register(OrderPlaced.avro_name, SCHEMA)
        assert len(registry.seen) == 1


async def test_through_the_bridge_a_refused_redirect_keeps_the_record_waiting() -> None:
    # The attacker's host would serve a schema: nothing from it is cached, the record is
    # neither executed nor dead-lettered, and it is still pending when the fetch ends.
    with hosts(redirect(302), schema_answer) as (registry, other):
        codec = APP.codec(schema_registry(Settings(
            schema_registry_url=with_credentials(registry.url))))
        processor = await _left_waiting(codec)
        assert codec.needs_registry(CONFLUENT_RECORD)
        assert processor.registry.degraded
        assert other.seen == []
        assert len(registry.seen) >= 2  # asked again at the bridge's pace, refused each time


def unavailable(_other: str, _path: str) -> Answer:
    return 503, {"Content-Type": "application/json"}, b'{"error_code": 50302}'


@pytest.mark.parametrize("call", CALLS)
def test_a_registry_answering_503_forever_is_given_up_after_the_stated_bound(call: str) -> None:
    with hosts(unavailable, schema_answer) as (registry, _other):
        client = schema_registry(Settings(schema_registry_url=registry.url))
        assert client is not None
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable) as gave_up:
            CALLS[call](client)
        took = time.monotonic() - started
        assert len(registry.seen) == REGISTRY_ATTEMPTS == 3
    assert "HTTP 503" in str(gave_up.value)
    assert "gave up after 3 attempts" in str(gave_up.value)
    assert ONE_CALL_MIN <= took < ONE_CALL_MAX + 1.0


def test_a_refused_connection_is_retried_within_the_bound_too() -> None:
    host = Host("127.0.0.1", unavailable)
    host.close()  # nothing listens on its port any more
    client = HttpSchemaRegistry(host.url, attempts=4, backoff=Backoff(initial=0.01, maximum=0.02))
    with pytest.raises(RegistryUnavailable, match="gave up after 4 attempts"):
        client.schema_by_id(1)


def test_a_brief_outage_is_ridden_out_within_one_call() -> None:
    answers = iter([unavailable, unavailable])

    def registry(other: str, path: str) -> Answer:
        return next(answers, lambda *_: schema_answer("GET", path))(other, path)

    with hosts(registry, schema_answer) as (host, _other):
        client = HttpSchemaRegistry(host.url, backoff=Backoff(initial=0.01, maximum=0.02))
        assert client.schema_by_id(1) == SCHEMA
        assert len(host.seen) == 3


def test_credentials_refused_are_not_retried_within_the_call() -> None:
    # A wrong password does not fix itself in seconds; the caller retries at its pace.
    with hosts(lambda *_: (401, {}, b'{"error_code": 401}'), schema_answer) as (host, _other):
        with pytest.raises(RegistryUnavailable, match="HTTP 401") as refused:
            HttpSchemaRegistry(host.url).schema_by_id(1)
        assert len(host.seen) == 1
    assert "gave up" not in str(refused.value)


async def test_through_the_bridge_records_wait_while_the_registry_answers_503() -> None:
    # Each registry call is bounded; the bridge keeps the record, never dead-letters it.
    with hosts(unavailable, schema_answer) as (registry, _other):
        codec = APP.codec(HttpSchemaRegistry(
            registry.url, backoff=Backoff(initial=0.01, maximum=0.02)))
        processor = await _left_waiting(codec)
        assert processor.registry.failures >= 2  # more than one bounded call
        assert len(registry.seen) == 3 * processor.registry.failures  # each one bounded


def test_attempts_are_at_least_one() -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        HttpSchemaRegistry("http://registry:8081", attempts=0)


async def _left_waiting(codec: FormatCodec) -> FetchProcessor:
    """One Confluent-framed record through a real processor: neither executed nor dead-lettered."""
    commands, dlq = FakeCommands(), FakeDeadLetters()
    processor = FetchProcessor(Decoder(codec, ROUTES, max_payload_bytes=4096), commands, dlq,
                               backoff=FAST)
    report = await processor.process([Record(ORDERS_EVENTS, 0, 7, b"A", CONFLUENT_RECORD)],
                                     budget=0.5)
    assert report.results == [None]
    assert (commands.calls, dlq.sent) == ([], [])
    return processor
