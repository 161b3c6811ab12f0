"""The Temporal codec server: lets the Temporal UI and ``temporal`` CLI read encrypted payloads.

It speaks the codec server protocol the UI and ``temporal --codec-endpoint``
use: ``POST <prefix>/encode`` and ``POST <prefix>/decode`` with a JSON body
``{"payloads": [...]}`` (payloads in protobuf JSON: base64 ``data`` and
metadata values), answered in the same shape. ``<prefix>`` may be empty or
anything (``/{namespace}`` when the CLI's endpoint is templated); the
``X-Namespace`` header is accepted and logged, the keys are the same for
every namespace.

Anyone who can call it can decrypt, so every request is checked, cheapest
first and before any body is read:

* ``Host`` must name this server (the bind address, a loopback name, or a
  configured name), else 421: a DNS-rebinding page cannot reach it.
* An ``Origin`` must be one of the configured origins, else 403; listed
  origins are echoed with ``Access-Control-Allow-Credentials``, ``*`` is
  answered as ``*`` without it (and refused when there is no token).
* Every POST carries ``Authorization: Bearer <token>`` (compared in constant
  time), else 401. Without a token the server only starts when asked to, for
  development, on a loopback address.
* The body has a ``Content-Length`` within ``max_body_bytes`` (411 without
  one, 413 over it) and arrives, with the head, within ``request_timeout``.

It runs on asyncio with h11 (the sans-I/O HTTP/1.1 parser under uvicorn)
rather than a thread per connection, so a slow client costs a few KiB and a
timer, not a thread, and every bound is enforced in one place: at most
``max_connections`` connections (when full, the oldest one still waiting for
its request head is closed for the new one, so slow clients cannot hold the
server; if every connection is busy the new one gets 503), request heads of
at most 16 KiB, at most ``_CONCURRENT_BODIES`` bodies buffered and decoded at
once. Request bodies and headers are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus

import h11
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from relayflow.temporal.claim_check import ClaimCheckDriver, resolve_references
from relayflow.temporal.payload_codec import EncryptionCodec, PayloadDecryptionError

__all__ = ["MAX_BODY_BYTES", "CodecServer", "CodecServerLimits", "CodecServerRefusedError",
           "is_loopback"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Default largest request body: Temporal refuses payloads over 2 MiB and gRPC messages over
4 MiB, so one event's payloads fit with room for base64 and JSON."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_ROUTE = re.compile(r"(?:/[^?#]*)?/(encode|decode)")
_ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
_MAX_HEAD_BYTES = 16 * 1024  # request line and headers; the UI and the CLI send well under 2 KiB
_READ_CHUNK = 16 * 1024
# Bodies buffered and decoded at once: the memory bound's multiplier (decoding one costs about
# five times its size again). Decoding holds the GIL, so more would not answer sooner.
_CONCURRENT_BODIES = 2
_LINGER_SECONDS = 1.0  # after an early refusal, so the client reads it instead of a reset
_LINGER_BYTES = 256 * 1024


class CodecServerRefusedError(ValueError):
    """The codec server would not be safe to start as configured (the message says why)."""


@dataclass(frozen=True)
class CodecServerLimits:
    """What one client, or many, may cost the codec server.

    Attributes:
        max_body_bytes: Largest request body (``Content-Length``); larger: 413, unread.
        max_connections: Open connections at most; when full, the oldest one still
            waiting for its request head is closed for a new one, else the new one gets 503.
        request_timeout: Seconds a request (head and body) may take to arrive, and
            its answer to be taken; a keep-alive connection idle that long is closed.
    """

    max_body_bytes: int = MAX_BODY_BYTES
    max_connections: int = 128
    request_timeout: float = 10.0


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or an address to bind) is a loopback one."""
    try:
        return host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class _Policy:
    """Who may ask what: the checks of a request head, before any body is read."""

    hosts: frozenset[str]
    origins: frozenset[str]
    expected_auth: bytes | None

    def host_allowed(self, values: list[bytes]) -> bool:
        if len(values) != 1:
            return False
        host = values[0].decode("latin-1").strip().lower()
        name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        return name in self.hosts

    def origin_allowed(self, values: list[bytes]) -> bool:
        if not values:
            return True  # not a browser's cross-origin request (the CLI, curl)
        return len(values) == 1 and ("*" in self.origins or
                                     values[0].decode("latin-1").rstrip("/") in self.origins)

    def authorized(self, values: list[bytes]) -> bool:
        if self.expected_auth is None:
            return True
        given = values[0] if len(values) == 1 else b""
        return hmac.compare_digest(given, self.expected_auth)

    def cors_headers(self, values: list[bytes]) -> list[tuple[str, str]]:
        if not values:
            return []
        vary = [("Vary", "Origin")]
        if not self.origin_allowed(values):
            return vary
        grant = ([("Access-Control-Allow-Origin", "*")] if "*" in self.origins else
                 [("Access-Control-Allow-Origin", values[0].decode("latin-1")),
                  ("Access-Control-Allow-Credentials", "true")])
        return [*grant, ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                ("Access-Control-Allow-Headers", _ALLOWED_HEADERS),
                ("Access-Control-Max-Age", "600"), *vary]


@dataclass(eq=False)
class _Connection:
    writer: asyncio.StreamWriter
    waiting_for_head: bool = True  # evictable: it has asked nothing yet
    waiting_since: float = field(default_factory=time.monotonic)


class _Answer(Exception):
    """Raised with the answer a request gets (a refusal, or the payloads)."""

    def __init__(self, status: HTTPStatus, message: str,
                 extra: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status, self.extra = status, extra


class CodecServer:
    """An HTTP codec server for ``codec``, bound as soon as it is built.

    Args:
        codec: The payload codec (its keys decrypt, its active key encrypts).
        host: Interface to listen on.
        port: TCP port (0: any free one; see ``url``).
        token: Bearer token every POST must carry.
        origins: Browser origins that get CORS headers (``*``: any, without credentials).
        hosts: Names the ``Host`` header may carry besides the bind address and the
            loopback names (the name a TLS terminator in front serves it as).
        limits: Body size, connection count and timeout.
        development: Allow serving without a token, on a loopback ``host`` only.
        claim_check: Resolves claim-check references on ``/decode`` (the blob, then
            decrypted), so the UI shows large payloads too; None leaves them as they are.

    Raises:
        CodecServerRefusedError: No token (and not loopback development), or ``*``
            among the origins without a token.
        OSError: The address cannot be bound.
    """

    def __init__(self, codec: EncryptionCodec, *, host: str = "127.0.0.1", port: int = 8081,
                 token: str | None = None, origins: Collection[str] = (),
                 hosts: Collection[str] = (), limits: CodecServerLimits | None = None,
                 development: bool = False, claim_check: ClaimCheckDriver | None = None) -> None:
        if token is None and not (development and is_loopback(host)):
            raise CodecServerRefusedError(
                "the codec server needs a bearer token (RELAYFLOW_CODEC_SERVER_TOKEN); "
                "without one it only serves a loopback address, for development")
        if token is None and "*" in origins:
            raise CodecServerRefusedError(
                "the codec server answers any origin ('*') only with a token: "
                "without one, any web page the operator opens could decrypt")
        self._codec = codec
        self._claim_check = claim_check
        self._limits = limits or CodecServerLimits()
        unspecified = host in {"", "0.0.0.0", "::"}  # noqa: S104 - a name, not a bind
        self._policy = _Policy(
            hosts=frozenset({*LOOPBACK_NAMES, *(() if unspecified else (host.lower(),)),
                             *(h.lower() for h in hosts)}),
            origins=frozenset(o.rstrip("/") for o in origins),
            expected_auth=None if token is None else f"Bearer {token}".encode())
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family)
        self._connections: set[_Connection] = set()
        self._bodies = asyncio.Semaphore(_CONCURRENT_BODIES)

    @property
    def url(self) -> str:
        """Where it answers."""
        host, port = self._socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def authenticated(self) -> bool:
        """False only in loopback development without a token."""
        return self._policy.expected_auth is not None

    def __repr__(self) -> str:
        """Where it listens; never the token."""
        return f"CodecServer({self.url!r})"

    async def serve(self, stop: asyncio.Event) -> None:
        """Answer requests until ``stop`` is set, then close every connection."""
        server = await asyncio.start_server(self._connected, sock=self._socket,
                                            limit=_READ_CHUNK)
        try:
            await stop.wait()
        finally:
            server.close()
            for connection in list(self._connections):
                connection.writer.transport.abort()
            await server.wait_closed()

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve from a background thread's event loop while the block runs; yields ``url``."""
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        thread = threading.Thread(target=loop.run_until_complete, args=(self.serve(stop),),
                                  name="codec-server", daemon=True)
        thread.start()
        try:
            yield self.url
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join()
            loop.close()

    # Connections ------------------------------------------------------------------------

    async def _connected(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if not self._admit():
            writer.write(_raw(HTTPStatus.SERVICE_UNAVAILABLE, "Retry-After: 1"))
            writer.close()
            return
        connection = _Connection(writer)
        self._connections.add(connection)
        try:
            await self._converse(reader, connection)
            writer.close()  # sends what is written (a 408, a 400), then closes
        except ConnectionError:
            writer.transport.abort()  # the client went away, or was evicted
        finally:
            self._connections.discard(connection)
            if not writer.is_closing():
                writer.transport.abort()

    def _admit(self) -> bool:
        """Room for one more connection, closing the oldest idle one if need be."""
        if len(self._connections) < self._limits.max_connections:
            return True
        idle = [c for c in self._connections if c.waiting_for_head]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.waiting_since)
        self._connections.discard(oldest)
        oldest.writer.transport.abort()
        return True

    async def _converse(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        """Answer the requests of one connection, each within the request timeout."""
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        writer = connection.writer
        while True:
            connection.waiting_for_head = True
            connection.waiting_since = time.monotonic()
            try:
                async with asyncio.timeout(self._limits.request_timeout) as deadline:
                    request = await _next_event(http, reader)
                    if not isinstance(request, h11.Request):
                        return  # the client closed the connection
                    connection.waiting_for_head = False
                    async with self._answering(http, request, writer):
                        await self._answer(http, request, reader, writer, deadline)
            except h11.RemoteProtocolError as error:  # a malformed or oversized head
                writer.write(_raw(HTTPStatus(error.error_status_hint)))
                return
            except TimeoutError:
                if not connection.waiting_for_head or http.trailing_data[0]:
                    writer.write(_raw(HTTPStatus.REQUEST_TIMEOUT))  # idle ones just close
                return
            if http.our_state is not h11.DONE or http.their_state is not h11.DONE:
                await _linger(writer, reader)
                return
            http.start_next_cycle()

    @asynccontextmanager
    async def _answering(self, http: h11.Connection, request: h11.Request,
                         writer: asyncio.StreamWriter) -> AsyncIterator[None]:
        """Turns the ``_Answer`` raised in the block into the response, with CORS headers."""
        try:
            yield
        except _Answer as answer:
            headers = [*self._policy.cors_headers(_values(request, b"origin")),
                       *answer.extra]
            if http.their_state is not h11.DONE:  # its body stays unread
                headers.append(("Connection", "close"))
            body = _body(answer.status, str(answer))
            if body:
                headers += [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))]
            writer.write(http.send(h11.Response(status_code=answer.status, headers=headers)))
            writer.write(http.send(h11.Data(data=body)) if body else b"")
            writer.write(http.send(h11.EndOfMessage()))
            await writer.drain()
            log.debug("%s %s %s", request.method.decode(), request.target.decode("latin-1"),
                      answer.status.value)

    async def _answer(self, http: h11.Connection, request: h11.Request,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      deadline: asyncio.Timeout) -> None:
        """Raise the ``_Answer`` to ``request``; checks its head before reading any body."""
        path = request.target.decode("latin-1").split("?", 1)[0]
        policy = self._policy
        if not policy.host_allowed(_values(request, b"host")):
            raise _Answer(HTTPStatus.MISDIRECTED_REQUEST, "this Host is not served here")
        match = _ROUTE.fullmatch(path)
        if match is None:
            raise _Answer(HTTPStatus.NOT_FOUND, "no such endpoint; POST /encode or /decode")
        if not policy.origin_allowed(_values(request, b"origin")):
            raise _Answer(HTTPStatus.FORBIDDEN, "this Origin may not call the codec server")
        if request.method == b"OPTIONS":  # a browser's preflight: it carries no credentials
            raise _Answer(HTTPStatus.NO_CONTENT, "")
        if request.method != b"POST":
            raise _Answer(HTTPStatus.METHOD_NOT_ALLOWED, "POST /encode or /decode",
                          [("Allow", "POST, OPTIONS")])
        if not policy.authorized(_values(request, b"authorization")):
            raise _Answer(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token",
                          [("WWW-Authenticate", "Bearer")])
        self._check_length(request)
        async with self._bodies:
            body = await _read_body(http, reader, writer)
            # Decoding is ours to bound (the body size); the answer gets a bound of its own.
            deadline.reschedule(asyncio.get_running_loop().time() + self._limits.request_timeout)
            # Decoding is for reading: a plaintext payload someone injected is shown as stored.
            operation = self._codec.encrypt if match.group(1) == "encode" else \
                self._decode
            status, answer = await asyncio.to_thread(_run, operation, body)
        namespace = b"".join(_values(request, b"x-namespace"))[:100].decode("latin-1")
        log.info("%s: %s (namespace %r)", path, answer if status != HTTPStatus.OK else
                 "answered", namespace)
        raise _Answer(status, answer)

    def _decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # Claim-check references are resolved first: the blobs hold what the codec encoded.
        if self._claim_check is not None:
            payloads = resolve_references(self._claim_check, payloads)
        return self._codec.reveal(payloads)

    def _check_length(self, request: h11.Request) -> None:
        if _values(request, b"transfer-encoding"):
            raise _Answer(HTTPStatus.LENGTH_REQUIRED,
                          "send the body with a Content-Length, not chunked")
        declared = _values(request, b"content-length")
        if not declared:
            raise _Answer(HTTPStatus.LENGTH_REQUIRED, "the body needs a Content-Length")
        length = int(declared[0])  # h11 has checked it is one decimal number
        if length > self._limits.max_body_bytes:
            raise _Answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          f"the body may have at most {self._limits.max_body_bytes} bytes")


def _values(request: h11.Request, name: bytes) -> list[bytes]:
    return [value for key, value in request.headers if key == name]


def _raw(status: HTTPStatus, *headers: str) -> bytes:
    """A closing answer written without h11 (no request head to answer through it)."""
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", "Content-Length: 0",
             "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


def _body(status: HTTPStatus, message: str) -> bytes:
    """An answer's body: the payloads (already JSON), none, or ``{"error": message}``."""
    if status == HTTPStatus.NO_CONTENT:
        return b""
    return message.encode() if status == HTTPStatus.OK else \
        json.dumps({"error": message}).encode()


async def _next_event(http: h11.Connection, reader: asyncio.StreamReader) -> object:
    while (event := http.next_event()) is h11.NEED_DATA:
        http.receive_data(await reader.read(_READ_CHUNK))  # b"": the client closed
    return event


async def _read_body(http: h11.Connection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> bytes:
    """The request's body; h11 holds it to the declared ``Content-Length``."""
    if http.they_are_waiting_for_100_continue:  # curl's Expect: 100-continue
        writer.write(http.send(h11.InformationalResponse(status_code=100, headers=[])))
    chunks: list[bytes] = []
    while not isinstance(event := await _next_event(http, reader), h11.EndOfMessage):
        if not isinstance(event, h11.Data):
            raise ConnectionResetError("the client closed the connection mid-body")
        chunks.append(bytes(event.data))
    return b"".join(chunks)


def _run(operation: Callable[[Sequence[Payload]], list[Payload]],
         body: bytes) -> tuple[HTTPStatus, str]:
    try:
        payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError):
        return HTTPStatus.BAD_REQUEST, 'the body must be {"payloads": [...]} in protobuf JSON'
    del body
    try:
        result = Payloads(payloads=operation(payloads.payloads))
    except PayloadDecryptionError as error:
        return HTTPStatus.BAD_REQUEST, str(error)
    except FileNotFoundError:
        return HTTPStatus.NOT_FOUND, "a claim-check blob is gone (swept after its retention)"
    except ValueError as error:  # a blob that does not match its digest
        return HTTPStatus.BAD_REQUEST, str(error)
    return HTTPStatus.OK, json_format.MessageToJson(result, indent=None)


async def _linger(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
    """Half-close, then drop what the client still sends for a moment (a little) before closing.

    Closing with unread bytes makes the kernel send a reset, which can destroy the
    answer (413, 401) before the client reads it.
    """
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
    dropped = 0
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(_LINGER_SECONDS):
            while dropped < _LINGER_BYTES and (chunk := await reader.read(_READ_CHUNK)):
                dropped += len(chunk)
