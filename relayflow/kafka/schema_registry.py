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
  connection to a 5xx or a credentials problem. The caller retries; nothing
  is dead-lettered because a registry was down or misconfigured for a while.

Basic authentication comes from the URL's user info
(``https://user:secret@registry:8081``), as Confluent clients accept it.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from relayflow.config.kafka import redacted_url

if TYPE_CHECKING:
    from relayflow.config.kafka import SchemaRegistrySettings

__all__ = ["HttpSchemaRegistry", "RegistryUnavailable", "SchemaRegistryError", "redacted_url",
           "schema_registry"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(OSError):
    """The registry could not answer now; retry later."""


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
            sent as basic authentication and never logged.
        timeout: Seconds for each request.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
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

    def register(self, subject: str, schema: str) -> int:
        """Register a schema under a subject (or find it there) and return its global id.

        Raises:
            SchemaRegistryError: Incompatible with the subject's earlier
                versions, or not a valid schema.
            RegistryUnavailable: The registry did not answer.
        """
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        body = self._call("POST", path, {"schema": schema, "schemaType": "AVRO"})
        return _int_field(body, "id", path)

    def schema_by_id(self, schema_id: int) -> str:
        """The schema (JSON text) with this global id.

        Raises:
            LookupError: The registry has no schema with this id.
            SchemaRegistryError: The schema is not an Avro schema.
            RegistryUnavailable: The registry did not answer.
        """
        path = f"/schemas/ids/{schema_id}"
        try:
            body = self._call("GET", path, None)
        except SchemaRegistryError as error:
            if error.status == HTTPStatus.NOT_FOUND:
                raise LookupError(f"the registry has no schema with id {schema_id}") from error
            raise
        schema_type = body.get("schemaType", "AVRO")
        if schema_type != "AVRO":
            raise SchemaRegistryError(f"schema id {schema_id} is {schema_type}, not AVRO",
                                      status=200, error_code=0)
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise RegistryUnavailable(f"GET {path}: answer without a schema")
        return schema

    def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
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
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise _refusal(method, path, error) from error
        except (OSError, ValueError) as error:  # refused, reset, timed out, not JSON
            raise RegistryUnavailable(f"{method} {path}: {error}") from error
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
    # about the request itself; 401/403, 408, 429 and 5xx may pass, so they are retried.
    if error.code in {404, 409, 422}:
        return SchemaRegistryError(message, status=error.code,
                                   error_code=code if isinstance(code, int) else 0)
    return RegistryUnavailable(message)


def _int_field(body: dict[str, Any], name: str, path: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RegistryUnavailable(f"{path}: answer has no integer {name!r}: {body!r}")
    return value
