"""Temporal TLS and API key settings: what the client gets, and bad values refused in one line."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from devtools.tls import Pki, make_pki
from relayflow.config.settings import SettingError, Settings
from relayflow.temporal.tls import refusal, temporal_credentials

KEY = "tmprl-test-key.4f1c2d9e"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _mtls(pki: Pki, **update: Any) -> Settings:
    return Settings(**{"temporal_tls_ca_file": pki.ca, "temporal_tls_cert_file": pki.client.cert,
                       "temporal_tls_key_file": pki.client.key, **update})


def test_no_tls_setting_means_plaintext_without_a_key() -> None:
    credentials = temporal_credentials(Settings())
    assert credentials.tls is False
    assert credentials.api_key is None


def test_tls_alone_trusts_the_system_roots() -> None:
    assert temporal_credentials(Settings(temporal_tls=True)).tls is True


def test_mtls_settings_give_the_sdk_the_files_contents(pki: Pki) -> None:
    tls = temporal_credentials(_mtls(pki, temporal_tls_server_name="localhost")).tls
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == pki.ca.read_bytes()
    assert tls.client_cert == pki.client.cert.read_bytes()
    assert tls.client_private_key == pki.client.key.read_bytes()
    assert tls.domain == "localhost"


def test_a_ca_file_alone_turns_tls_on(pki: Pki) -> None:
    tls = temporal_credentials(Settings(temporal_tls_ca_file=pki.ca)).tls
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert is None


def test_an_api_key_goes_to_the_client_over_tls_and_into_no_repr() -> None:
    settings = Settings(temporal_api_key=SecretStr(KEY))
    credentials = temporal_credentials(settings)
    assert credentials.api_key == KEY
    assert credentials.tls is True
    for shown in (repr(credentials), str(credentials), repr(settings), str(settings),
                  settings.model_dump_json()):
        assert KEY not in shown


def test_the_client_key_goes_to_the_client_and_into_no_repr(pki: Pki) -> None:
    credentials = temporal_credentials(_mtls(pki, temporal_api_key=SecretStr(KEY)))
    assert isinstance(credentials.tls, TLSConfig)
    assert credentials.tls.client_private_key == pki.client.key.read_bytes()
    key_lines = pki.client.key.read_text().splitlines()[1:-1]
    shown = repr(credentials)
    assert "client_private_key=b'<hidden>'" in shown
    assert "api_key=<hidden>" in shown
    assert not [line for line in [*key_lines, KEY] if line in shown]


def test_a_child_process_gets_the_api_key_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Settings(temporal_api_key=SecretStr(KEY)).as_env()
    assert env["RELAYFLOW_TEMPORAL_API_KEY"] == KEY
    monkeypatch.setenv("RELAYFLOW_TEMPORAL_API_KEY", KEY)
    assert temporal_credentials(Settings()).api_key == KEY


@dataclass(frozen=True)
class Files:
    """The test PKI, and a folder for files made to be wrong."""

    pki: Pki
    folder: Path

    def not_pem(self) -> Path:
        path = self.folder / "not.pem"
        path.write_text("hello\n")
        return path

    def encrypted_key(self) -> Path:
        key = serialization.load_pem_private_key(self.pki.client.key.read_bytes(), password=None)
        path = self.folder / "encrypted.key"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"pass")))
        return path


_CA = "RELAYFLOW_TEMPORAL_TLS_CA_FILE"
_CERT = "RELAYFLOW_TEMPORAL_TLS_CERT_FILE"
_KEY = "RELAYFLOW_TEMPORAL_TLS_KEY_FILE"

BAD: list[tuple[str, Callable[[Files], dict[str, Any]], str]] = [
    ("missing CA file", lambda f: {"temporal_tls_ca_file": f.folder / "nope.crt"},
     f"{_CA}: cannot read .*nope.crt: No such file"),
    ("CA file without a certificate", lambda f: {"temporal_tls_ca_file": f.not_pem()},
     f"{_CA}: no PEM certificate in"),
    ("certificate without key", lambda f: {"temporal_tls_cert_file": f.pki.client.cert},
     f"{_KEY}: required with {_CERT}"),
    ("key without certificate", lambda f: {"temporal_tls_key_file": f.pki.client.key},
     f"{_CERT}: required with {_KEY}"),
    ("unreadable key", lambda f: {"temporal_tls_cert_file": f.pki.client.cert,
                                  "temporal_tls_key_file": f.folder},
     f"{_KEY}: cannot read"),
    ("key that is no key", lambda f: {"temporal_tls_cert_file": f.pki.client.cert,
                                      "temporal_tls_key_file": f.pki.client.cert},
     f"{_KEY}: no PEM private key in"),
    ("another certificate's key", lambda f: {"temporal_tls_cert_file": f.pki.client.cert,
                                             "temporal_tls_key_file": f.pki.stranger.key},
     f"{_KEY}: .* is not the key of the certificate in {_CERT}"),
    ("encrypted key", lambda f: {"temporal_tls_cert_file": f.pki.client.cert,
                                 "temporal_tls_key_file": f.encrypted_key()},
     f"{_KEY}: .* is encrypted"),
    ("certificate file without a certificate",
     lambda f: {"temporal_tls_cert_file": f.not_pem(), "temporal_tls_key_file": f.pki.client.key},
     f"{_CERT}: no PEM certificate in"),
    ("empty server name", lambda _: {"temporal_tls_server_name": ""},
     "RELAYFLOW_TEMPORAL_TLS_SERVER_NAME: empty"),
    ("empty API key", lambda _: {"temporal_api_key": SecretStr("")},
     "RELAYFLOW_TEMPORAL_API_KEY: empty"),
    ("API key read with its newline", lambda _: {"temporal_api_key": SecretStr(KEY + "\n")},
     "RELAYFLOW_TEMPORAL_API_KEY: contains whitespace"),
]


@pytest.mark.parametrize(("case", "update", "pattern"), BAD, ids=[case for case, _, _ in BAD])
def test_a_bad_setting_is_one_line_naming_it(case: str, update: Callable[[Files], dict[str, Any]],
                                             pattern: str, pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(SettingError) as refused:
        temporal_credentials(Settings(**update(Files(pki, tmp_path))))
    message = str(refused.value)
    assert re.match(pattern, message), message
    assert "\n" not in message
    assert KEY not in message


def test_a_refused_call_blames_the_credentials_in_use_and_never_shows_the_key() -> None:
    settings = Settings(temporal_api_key=SecretStr(KEY))
    error = RPCError("API key not valid", RPCStatusCode.UNAUTHENTICATED, b"")
    blamed = refusal(settings, error)
    assert blamed is not None
    assert str(blamed).startswith("RELAYFLOW_TEMPORAL_API_KEY: ")
    assert KEY not in str(blamed)


@pytest.mark.parametrize("status", [RPCStatusCode.UNAVAILABLE, RPCStatusCode.NOT_FOUND])
def test_other_call_errors_are_not_refusals(status: RPCStatusCode) -> None:
    assert refusal(Settings(), RPCError("no", status, b"")) is None
