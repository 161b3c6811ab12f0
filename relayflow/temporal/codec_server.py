"""The Temporal codec server: lets the Temporal UI and ``temporal`` CLI read encrypted payloads.

It speaks the codec server protocol the UI and ``temporal --codec-endpoint``
use: ``POST <prefix>/encode`` and ``POST <prefix>/decode`` with a JSON body
``{"payloads": [...]}`` (payloads in protobuf JSON: base64 ``data`` and
metadata values), answered in the same shape. ``<prefix>`` may be empty or
anything (``/{namespace}`` when the CLI's endpoint is templated); the
``X-Namespace`` header is accepted and logged, the keys are the same for
every namespace. Browsers get CORS headers for the configured origins, and a
bearer token, when configured, is required on every POST (the UI's and the
CLI's ``--codec-auth``; preflight requests carry no credentials and need none).

The standard library's threading HTTP server is enough for an operator tool
decoding a history at a time; it adds no web framework to relayflow.
Request bodies and headers are never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Collection, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from relayflow.observability.http_server import BackgroundHTTPServer
from relayflow.temporal.payload_codec import EncryptionCodec, PayloadDecryptionError

__all__ = ["MAX_BODY_BYTES", "CodecServer"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request accepted: a long history's payloads in one call, well within memory."""
_ROUTE = re.compile(r"(?:/[^?#]*)?/(encode|decode)")
_ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never holds up shutdown

    def __init__(self, address: tuple[str, int], codec: EncryptionCodec, token: str | None,
                 origins: Collection[str]) -> None:
        super().__init__(address, _Handler)
        self.codec = codec
        self.expected_auth = None if token is None else f"Bearer {token}".encode()
        self.origins = frozenset(origins)


class _Handler(BaseHTTPRequestHandler):
    server_version = "relayflow-codec-server"
    protocol_version = "HTTP/1.1"

    @property
    def _config(self) -> _Server:
        return cast("_Server", self.server)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        """Access lines at debug level (request line and status only, never headers)."""
        log.debug("%s %s", self.address_string(), format % args)

    def _operation(self) -> Callable[[Sequence[Payload]], list[Payload]] | None:
        match = _ROUTE.fullmatch(self.path.split("?", 1)[0])
        if match is None:
            return None
        codec = self._config.codec
        return codec.encrypt if match.group(1) == "encode" else codec.decrypt

    def _cors_headers(self) -> None:
        origin = self.headers.get("Origin")
        if origin is None:
            return
        origins = self._config.origins
        if origin.rstrip("/") in origins or "*" in origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", _ALLOWED_HEADERS)
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Vary", "Origin")

    def _reply(self, status: HTTPStatus, body: str | None = None,
               extra: Sequence[tuple[str, str]] = ()) -> None:
        data = (body or "").encode()
        self.send_response(status)
        self._cors_headers()
        for name, value in extra:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str,
               extra: Sequence[tuple[str, str]] = ()) -> None:
        self._reply(status, json.dumps({"error": message}), extra)

    def do_OPTIONS(self) -> None:
        """CORS preflight of a browser (the Temporal UI)."""
        if self._operation() is None:
            self._error(HTTPStatus.NOT_FOUND, "no such endpoint; POST /encode or /decode")
            return
        self._reply(HTTPStatus.NO_CONTENT)

    def do_POST(self) -> None:
        """Encode or decode the posted payloads."""
        operation = self._operation()
        if operation is None:
            self._error(HTTPStatus.NOT_FOUND, "no such endpoint; POST /encode or /decode")
            return
        expected = self._config.expected_auth
        given = (self.headers.get("Authorization") or "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            self.close_connection = True  # the body stays unread
            self._error(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token",
                        [("WWW-Authenticate", "Bearer")])
            return
        declared = self.headers.get("Content-Length") or ""
        length = int(declared) if declared.isdigit() else -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0
                        else HTTPStatus.LENGTH_REQUIRED,
                        f"the body must have a Content-Length of at most {MAX_BODY_BYTES}")
            return
        body = self.rfile.read(length)
        try:
            payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST,
                        'the body must be {"payloads": [...]} in protobuf JSON')
            return
        try:
            result = Payloads(payloads=operation(payloads.payloads))
        except PayloadDecryptionError as error:
            log.warning("codec server: %s (namespace %s)", error,
                        self.headers.get("X-Namespace", "-"))
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        log.info("%s %d payload(s) for namespace %s", self.path, len(result.payloads),
                 self.headers.get("X-Namespace", "-"))
        self._reply(HTTPStatus.OK, json_format.MessageToJson(result, indent=None))


class CodecServer(BackgroundHTTPServer):
    """An HTTP codec server for ``codec``, bound as soon as it is built.

    Args:
        codec: The payload codec (its keys decrypt, its active key encrypts).
        host: Interface to listen on.
        port: TCP port (0: any free one; see ``url``).
        token: Bearer token every POST must carry; None: no authentication.
        origins: Browser origins that get CORS headers (``*``: any).
    """

    def __init__(self, codec: EncryptionCodec, *, host: str = "127.0.0.1", port: int = 8081,
                 token: str | None = None, origins: Collection[str] = ()) -> None:
        super().__init__(_Server((host, port), codec, token, origins), name="codec-server")

    def __repr__(self) -> str:
        """Where it listens; never the token."""
        return f"CodecServer({self.url!r})"

