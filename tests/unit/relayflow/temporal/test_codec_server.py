"""The codec server, called over HTTP on loopback the way the Temporal UI and CLI call it."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from relayflow.temporal.codec_server import CodecServer
from relayflow.temporal.payload_codec import KEY_ID_METADATA, EncryptionCodec, EncryptionKey

KEY = EncryptionKey("k-2026", os.urandom(32))
CODEC = EncryptionCodec([KEY])
UI = "http://localhost:8233"
TOKEN = "s3cret-t0ken"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = CodecServer(CODEC, port=0, token=TOKEN, origins=[UI])
    with server.serving() as address:
        yield address


def _call(url: str, *, method: str = "POST", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or None) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer, raw = error.code, error.headers, error.read()
    return status, dict(answer.items()), json.loads(raw) if raw else None


def _as_cli_sends(payloads: list[Payload]) -> bytes:
    """The request body ``temporal --codec-endpoint`` and the UI send."""
    return json_format.MessageToJson(Payloads(payloads=payloads)).encode()


def _post(url: str, payloads: list[Payload], **headers: str) -> tuple[int, dict[str, str], Any]:
    return _call(url, body=_as_cli_sends(payloads),
                 headers={"Content-Type": "application/json", "X-Namespace": "default",
                          "Authorization": f"Bearer {TOKEN}", **headers})


def _payloads(answer: Any) -> list[Payload]:
    return list(json_format.ParseDict(answer, Payloads()).payloads)


PLAIN = [Payload(metadata={"encoding": b"json/plain"}, data=b'{"order_id": "o-77"}')]


@pytest.mark.parametrize("prefix", ["", "/default"])  # the CLI templates {namespace} in
def test_decode_returns_the_clear_payloads(url: str, prefix: str) -> None:
    status, headers, answer = _post(f"{url}{prefix}/decode", CODEC.encrypt(PLAIN))
    assert status == 200, answer
    assert headers["Content-Type"] == "application/json"
    assert _payloads(answer) == PLAIN


def test_encode_returns_payloads_the_workers_can_read(url: str) -> None:
    status, _, answer = _post(f"{url}/encode", PLAIN)
    assert status == 200, answer
    [encrypted] = _payloads(answer)
    assert encrypted.metadata[KEY_ID_METADATA] == b"k-2026"
    assert CODEC.decrypt([encrypted]) == PLAIN


@pytest.mark.parametrize("authorization", ["", "Bearer wrong", f"Basic {TOKEN}"])
def test_without_the_token_nothing_is_decoded(url: str, authorization: str) -> None:
    status, headers, answer = _post(f"{url}/decode", CODEC.encrypt(PLAIN),
                                    Authorization=authorization)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert "o-77" not in json.dumps(answer)


def test_the_ui_gets_cors_headers_and_a_preflight_answer(url: str) -> None:
    status, headers, _ = _call(f"{url}/decode", method="OPTIONS",
                               headers={"Origin": UI, "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == UI
    assert headers["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-namespace", "authorization"} <= allowed
    status, headers, _ = _post(f"{url}/decode", CODEC.encrypt(PLAIN), Origin=UI)
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, UI)


def test_other_origins_get_no_cors_grant(url: str) -> None:
    _, headers, _ = _call(f"{url}/decode", method="OPTIONS",
                          headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


def test_a_payload_of_an_unknown_key_is_a_clear_error(url: str) -> None:
    other = EncryptionCodec([EncryptionKey("k-retired", os.urandom(32))])
    status, _, answer = _post(f"{url}/decode", other.encrypt(PLAIN))
    assert status == 400
    assert "'k-retired', which is not configured" in answer["error"]


@pytest.mark.parametrize("body", [b"not json", b'{"payloads": "nope"}', b"\xff\xfe"])
def test_a_malformed_body_is_a_bad_request(url: str, body: bytes) -> None:
    status, _, answer = _call(f"{url}/decode", body=body,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 400
    assert "protobuf JSON" in answer["error"]


def test_other_paths_are_not_found(url: str) -> None:
    status, _, _ = _post(f"{url}/decrypt", PLAIN)
    assert status == 404
