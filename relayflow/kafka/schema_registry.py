"""A client for a Confluent-compatible schema registry (its REST API, v1).

Only what the codec needs: register a schema under a subject and get its id
(outcomes written in the Confluent wire format), and fetch a schema by id
(records framed by Confluent serializers). The codec caches both answers, so
the registry is asked once per schema and process.

Errors are split by what the caller should do with the record:

* ``LookupError``: the registry answered that the schema id does not exist
  (HTTP 404). Waiting will not help; the record is dead-lettered.
* ``SchemaRegistryError`` (a ``ValueError``): the registry refused the request
  for good (an incompatible or invalid schema on register, or a schema that
  is not Avro).
* ``RegistryUnavailable`` (an ``OSError``): anything else, from a refused
  connection to a 5xx, a credentials problem or a refused redirect. The caller
  retries at its own pace (the bridge keeps the record waiting, Temporal
  retries the activity); nothing is dead-lettered because a registry was down
  or misconfigured for a while.

Each call is bounded: a transient failure (connection refused or reset, a
timeout, HTTP 408, 429 or 5xx) is retried within the call, ``attempts`` times
in all (``REGISTRY_ATTEMPTS``, 3) with capped exponential backoff and jitter
(``REGISTRY_BACKOFF``: 0.5 s doubling, at most 4 s), then the call raises
``RegistryUnavailable`` saying it gave up. Worst case with the defaults and
``RELAYFLOW_SCHEMA_REGISTRY_TIMEOUT_SECONDS`` at 5: 3 x 5 s + 1.5 s = 16.5 s.

Basic authentication comes from the URL's user info
(``https://user:secret@registry:8081``), as Confluent clients accept it. The
credentials go only to that origin (scheme, host and port): a redirect
elsewhere is refused, not followed (``RegistryRedirectRefused``), so neither
the credentials nor the question leave it, and no schema is taken from a host
nobody configured. A redirect within the origin is followed for reads (GET);
a redirected write (POST) is refused, as following it would drop its body.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, Any, Final

from bridge.retry import Backoff
from relayflow.config.kafka import redacted_url

if TYPE_CHECKING:
    from relayflow.config.kafka import SchemaRegistrySettings

__all__ = ["REGISTRY_ATTEMPTS", "REGISTRY_BACKOFF", "HttpSchemaRegistry",
           "RegistryRedirectRefused", "RegistryUnavailable", "SchemaRegistryError", "redacted_url",
           "schema_registry"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# Answers that may change within seconds; 401/403 wait for an operator, not a retry.
_TRANSIENT_STATUS: Final = frozenset({408, 429})
REGISTRY_ATTEMPTS: Final = 3
REGISTRY_BACKOFF: Final = Backoff(initial=0.5, maximum=4.0)


class RegistryUnavailable(OSError):
    """The registry could not answer now; retry later."""


class RegistryRedirectRefused(RegistryUnavailable):
    """The registry redirected to another origin (or a write elsewhere); not followed.

    Retrying the call cannot help (it would be redirected again), so it is not
    retried within the call; the record waits like in an outage until the URL
    or the registry is fixed.
    """


class _Transient(RegistryUnavailable):
    """A failure worth another attempt within the same call."""


class SchemaRegistryError(ValueError):
    """The registry refused the request for good.

    Attributes:
        status: The HTTP status.
        error_code: The registry's own error code (e.g. 409 incompatible,
            42201 invalid schema), 0 when the body had none.
    """

    def __init__(self, message: str, *, status: int, error_code: int) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class HttpSchemaRegistry:
    """Talks to a Confluent-compatible schema registry over HTTP(S).

    Calls block (``urllib``); async callers run them in a thread, which the
    codec's ``prepare_*`` methods do.

    Args:
        url: Base URL, e.g. ``http://registry:8081``; user info, if any, is
            sent as basic authentication, only to this URL's origin, and never
            logged.
        timeout: Seconds for each request.
        attempts: Requests per call at most (1: no retry); transient failures
            only.
        backoff: Delays between attempts.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, attempts: int = REGISTRY_ATTEMPTS,
                 backoff: Backoff = REGISTRY_BACKOFF) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("schema registry URL must be http(s)://host[:port]: "
                             f"{redacted_url(url)!r}")
        self._auth: str | None = None
        if parts.username is not None:
            user_info = (f"{urllib.parse.unquote(parts.username)}:"
                         f"{urllib.parse.unquote(parts.password or '')}")
            self._auth = "Basic " + base64.b64encode(user_info.encode()).decode()
        host = parts.netloc.rpartition("@")[2]  # credentials go in a header, not the URL
        self.base_url = urllib.parse.urlunsplit(
            (parts.scheme, host, parts.path.rstrip("/"), "", ""))
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        # Replaces urllib's redirect handler, which copies every header (Authorization
        # too) to wherever the Location points.
        self._opener = urllib.request.build_opener(_SameOriginRedirects(self.base_url))

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        """Register a schema under a subject (or find it there) and return its global id.

        Args:
            subject: Where to register it (the codec's subject name strategy decides).
            schema: The schema text.
            schema_type: ``AVRO``, ``JSON`` or ``PROTOBUF``.

        Raises:
            SchemaRegistryError: Incompatible with the subject's earlier
                versions, or not a valid schema.
            RegistryUnavailable: The registry did not answer.
        """
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        body = self._call("POST", path, {"schema": schema, "schemaType": schema_type})
        return _int_field(body, "id", path)

    def schema_by_id(self, schema_id: int) -> str:
        """The schema (JSON text) with this global id.

        Raises:
            LookupError: The registry has no schema with this id.
            SchemaRegistryError: The schema is not an Avro schema.
            RegistryUnavailable: The registry did not answer.
        """
        schema_type, schema = self.typed_schema_by_id(schema_id)
        if schema_type != "AVRO":
            raise SchemaRegistryError(f"schema id {schema_id} is {schema_type}, not AVRO",
                                      status=200, error_code=0)
        return schema

    def typed_schema_by_id(self, schema_id: int) -> tuple[str, str]:
        """The schema type (``AVRO``, ``JSON``, ``PROTOBUF``) and text with this global id.

        Raises:
            LookupError: The registry has no schema with this id.
            RegistryUnavailable: The registry did not answer.
        """
        path = f"/schemas/ids/{schema_id}"
        try:
            body = self._call("GET", path, None)
        except SchemaRegistryError as error:
            if error.status == HTTPStatus.NOT_FOUND:
                raise LookupError(f"the registry has no schema with id {schema_id}") from error
            raise
        schema_type = str(body.get("schemaType", "AVRO"))  # Confluent leaves it out for Avro
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise RegistryUnavailable(f"GET {path}: answer without a schema")
        return schema_type, schema

    def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """One call: up to ``attempts`` requests while the failures are transient."""
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return self._request(method, path, payload)
            except _Transient as error:
                failures += 1
                if failures >= self._attempts:
                    raise RegistryUnavailable(
                        f"{error} (gave up after {failures} attempts over "
                        f"{time.monotonic() - started:.1f}s)") from error
                time.sleep(self._backoff.delay(failures))

    def _request(self, method: str, path: str,
                 payload: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Accept": _CONTENT_TYPE}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = _CONTENT_TYPE
        if self._auth is not None:
            headers["Authorization"] = self._auth
        # The scheme was checked to be http(s) in __init__ (S310: no file: URLs).
        request = urllib.request.Request(self.base_url + path, data=data,  # noqa: S310
                                         headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise _refusal(method, path, error) from error
        except RegistryRedirectRefused:
            raise
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out
            raise _Transient(f"{method} {path}: {error}") from error
        try:
            answer = json.loads(body or b"{}")
        except ValueError as error:
            raise RegistryUnavailable(f"{method} {path}: answer is not JSON") from error
        if not isinstance(answer, dict):
            raise RegistryUnavailable(f"{method} {path}: answer is not a JSON object")
        return answer


def schema_registry(settings: SchemaRegistrySettings) -> HttpSchemaRegistry | None:
    """A client of the configured schema registry, or None when none is set.

    Args:
        settings: relayflow's settings (``schema_registry_url``, ``_timeout_seconds``).
    """
    if not settings.schema_registry_url:
        return None
    return HttpSchemaRegistry(settings.schema_registry_url,
                              timeout=settings.schema_registry_timeout_seconds)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only for a GET within the registry's origin.

    Args:
        base_url: The registry's base URL; its scheme, host and port are the origin.
    """

    def __init__(self, base_url: str) -> None:
        self._origin = _origin(base_url)

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int,
                         msg: str, headers: Any, newurl: str) -> urllib.request.Request | None:
        """The request to the new location, if it may be followed (urllib's hook)."""
        method = req.get_method()
        # newurl is absolute here (urllib resolves Location against the request URL).
        target = urllib.parse.urlsplit(newurl)
        shown = urllib.parse.urlunsplit(target._replace(query="", fragment=""))
        why = None
        if _origin(newurl) != self._origin:
            why = "another origin; the registry's credentials and questions go only to its own"
        elif method != "GET":
            why = f"a redirected {method} would lose its body"
        if why is not None:
            fp.close()
            raise RegistryRedirectRefused(
                f"{method} {urllib.parse.urlsplit(req.full_url).path}: HTTP {code} redirect "
                f"to {redacted_url(shown)} refused ({why}); set the schema registry URL "
                f"to the registry's own address")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number: matches no origin
        port = -1
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port if port is not None else default


def _refusal(method: str, path: str, error: urllib.error.HTTPError) -> OSError | ValueError:
    """An HTTP error answer, classified: definite refusals vs. try-again-later."""
    try:
        body = json.loads(error.read() or b"{}")
    except (OSError, ValueError):
        body = {}
    detail = body.get("message", error.reason) if isinstance(body, dict) else error.reason
    code = body.get("error_code", 0) if isinstance(body, dict) else 0
    message = f"{method} {path}: HTTP {error.code} ({detail})"
    # 404 (no such subject or id), 409 (incompatible), 422 (invalid schema) are answers
    # about the request itself; 401/403, 408, 429 and 5xx may pass, so the caller retries
    # them, and the transient ones are retried within the call too.
    if error.code in {404, 409, 422}:
        return SchemaRegistryError(message, status=error.code,
                                   error_code=code if isinstance(code, int) else 0)
    if error.code >= HTTPStatus.INTERNAL_SERVER_ERROR or error.code in _TRANSIENT_STATUS:
        return _Transient(message)
    return RegistryUnavailable(message)


def _int_field(body: dict[str, Any], name: str, path: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RegistryUnavailable(f"{path}: answer has no integer {name!r}: {body!r}")
    return value
