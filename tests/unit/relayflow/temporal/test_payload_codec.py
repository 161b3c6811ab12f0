"""Payload encryption: AES-256-GCM with named keys that rotate, and keys that never show."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.runtime.bootstrap import data_converter
from relayflow.temporal.payload_codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    EncryptionKey,
    PayloadDecryptionError,
    PayloadKeyError,
    PlaintextPayloadRefused,
    UnknownEncryptionKey,
    new_key_entry,
    parse_keys,
    payload_codec,
    plaintext_window_warning,
    read_keys,
)
from tests.helpers.support import order_placed

OLD = EncryptionKey("2025-01", os.urandom(32))
NEW = EncryptionKey("2026-06", os.urandom(32))
SECRET_TEXTS = [*(base64.b64encode(k.secret).decode() for k in (OLD, NEW)), NEW.secret.hex()]


def _entry(key: EncryptionKey) -> str:
    return f"{key.key_id}:{base64.b64encode(key.secret).decode()}"


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def test_round_trip_hides_data_and_metadata() -> None:
    codec = EncryptionCodec([NEW])
    originals = [_payload('{"order_id": "o-confidential"}'), _payload('"sku-secret"')]
    encrypted = codec.encrypt(originals)
    for payload in encrypted:
        assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
        assert payload.metadata[KEY_ID_METADATA] == b"2026-06"
        assert b"confidential" not in payload.data
        assert b"secret" not in payload.data
        assert b"json/plain" not in payload.data  # the original metadata is inside
    assert codec.decrypt(encrypted) == originals


def test_every_payload_gets_a_fresh_nonce() -> None:
    codec = EncryptionCodec([NEW])
    first, second = codec.encrypt([_payload("same"), _payload("same")])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_the_temporal_codec_api_encrypts_too() -> None:
    codec = EncryptionCodec([NEW])
    [encrypted] = await codec.encode([_payload("o-123")])
    assert b"o-123" not in encrypted.data
    assert await codec.decode([encrypted]) == [_payload("o-123")]


def test_rotation_newest_key_encrypts_and_old_keys_still_decrypt() -> None:
    before = EncryptionCodec([OLD]).encrypt([_payload("written before rotation")])
    rotated = EncryptionCodec([OLD, NEW])
    after = rotated.encrypt([_payload("written after rotation")])
    assert after[0].metadata[KEY_ID_METADATA] == b"2026-06"
    assert rotated.decrypt(before + after) == [_payload("written before rotation"),
                                               _payload("written after rotation")]
    pinned = EncryptionCodec([OLD, NEW], active_key_id="2025-01")
    assert pinned.encrypt([_payload("x")])[0].metadata[KEY_ID_METADATA] == b"2025-01"


def test_a_payload_of_an_unknown_key_fails_naming_the_key_id_only() -> None:
    encrypted = EncryptionCodec([NEW]).encrypt([_payload("x")])
    with pytest.raises(UnknownEncryptionKey) as caught:
        EncryptionCodec([OLD]).decrypt(encrypted)
    message = str(caught.value)
    assert caught.value.key_id == "2026-06"
    assert "'2026-06'" in message
    assert "2025-01" in message  # what is configured instead
    assert not any(secret in message for secret in SECRET_TEXTS)


@pytest.mark.parametrize("tamper", ["flip a ciphertext bit", "flip a nonce bit", "truncate",
                                    "relabel the key id"])
def test_a_tampered_payload_fails_authentication(tamper: str) -> None:
    # The same key under a second id: only the authenticated key id tells them apart.
    codec = EncryptionCodec([EncryptionKey("2025-01", NEW.secret), NEW])
    [payload] = codec.encrypt([_payload("amount 1250")])
    data = bytearray(payload.data)
    if tamper == "flip a ciphertext bit":
        data[-20] ^= 1
    elif tamper == "flip a nonce bit":
        data[0] ^= 1
    elif tamper == "truncate":
        del data[-1]
    else:
        payload.metadata[KEY_ID_METADATA] = b"2025-01"
    payload.data = bytes(data)
    with pytest.raises(PayloadDecryptionError, match="fails authentication"):
        codec.decrypt([payload])


PLAIN_SECRET = '{"order_id": "o-plain-4711"}'
"""What a plaintext payload carries: never in a refusal."""
AHEAD, PASSED = timedelta(days=30), timedelta(seconds=-1)


@pytest.mark.parametrize("payload", [
    _payload(PLAIN_SECRET),
    Payload(metadata={"encoding": b"binary/null"}),  # a None: no data, still not ours
    Payload(data=PLAIN_SECRET.encode()),  # no encoding at all
    Payload(metadata={"encoding": b"binary/encrypted-not" + b"x" * 500},
            data=PLAIN_SECRET.encode()),
])
async def test_a_payload_that_is_not_encrypted_is_refused_without_its_content(
        payload: Payload) -> None:
    codec = EncryptionCodec([NEW])
    with pytest.raises(PlaintextPayloadRefused) as caught:
        await codec.decode([payload])
    message = str(caught.value)
    assert message.startswith("refused a payload that is not encrypted (encoding ")
    assert "no plaintext window is set" in message
    assert "RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL" in message
    assert "o-plain-4711" not in message
    assert len(message) < 400  # an attacker's encoding is shown truncated
    assert caught.value.encoding == payload.metadata.get("encoding", b"")


def test_one_plaintext_payload_among_encrypted_ones_refuses_the_call() -> None:
    codec = EncryptionCodec([NEW])
    mixed = [*codec.encrypt([_payload('"a"')]), _payload(PLAIN_SECRET),
             *codec.encrypt([_payload('"b"')])]
    with pytest.raises(PlaintextPayloadRefused, match="'json/plain'"):
        codec.decrypt(mixed)


def test_plaintext_is_accepted_while_the_window_is_open_only() -> None:
    plain = [_payload(PLAIN_SECRET)]
    encrypted = EncryptionCodec([NEW]).encrypt([_payload('"e"')])
    now = datetime.now(UTC)
    open_window = EncryptionCodec([NEW], accept_plaintext_until=now + AHEAD)
    assert open_window.accepts_plaintext
    assert open_window.decrypt(plain + encrypted) == [*plain, _payload('"e"')]
    ended = EncryptionCodec([NEW], accept_plaintext_until=now + PASSED)
    assert not ended.accepts_plaintext
    ended_at = re.escape(f"the plaintext window ended at {(now + PASSED).isoformat()}")
    with pytest.raises(PlaintextPayloadRefused, match=ended_at):
        ended.decrypt(plain)
    assert not EncryptionCodec([NEW]).accepts_plaintext


def test_reveal_shows_plaintext_as_stored_for_reading() -> None:
    codec = EncryptionCodec([NEW])
    plain = [_payload(PLAIN_SECRET)]
    assert codec.reveal(plain + codec.encrypt(plain)) == plain + plain


async def test_the_data_converter_refuses_plaintext_unless_the_window_is_open() -> None:
    keys, order = SecretStr(_entry(NEW)), order_placed()
    [plain] = await data_converter(Settings()).encode([order])  # a client without the keys
    with pytest.raises(PlaintextPayloadRefused):
        await data_converter(Settings(payload_encryption_keys=keys)).decode([plain], [type(order)])
    window = Settings(payload_encryption_keys=keys,
                      payload_accept_plaintext_until=datetime.now(UTC) + AHEAD)
    assert await data_converter(window).decode([plain], [type(order)]) == [order]


@pytest.mark.parametrize(("given", "instant"), [
    ("2026-07-01", datetime(2026, 7, 1, tzinfo=UTC)),
    ("2026-07-01T09:30:00Z", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
    ("2026-07-01T11:30:00+02:00", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
])
def test_the_window_is_an_instant(given: str, instant: datetime,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL", given)
    assert Settings().payload_accept_plaintext_until == instant


def test_a_window_without_an_offset_or_without_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="with its UTC offset"):
        Settings.model_validate({"payload_accept_plaintext_until": "2026-07-01T09:30:00"})
    with pytest.raises(PayloadKeyError,
                       match="RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL is set but no keys are"):
        payload_codec(Settings(payload_accept_plaintext_until=datetime(2026, 7, 1, tzinfo=UTC)))


def test_a_warning_line_says_while_the_window_is_set() -> None:
    keys = SecretStr(_entry(NEW))
    assert plaintext_window_warning(Settings(payload_encryption_keys=keys)) is None
    until = datetime.now(UTC) + AHEAD
    warning = plaintext_window_warning(Settings(payload_encryption_keys=keys,
                                                payload_accept_plaintext_until=until))
    assert warning is not None
    assert warning.startswith(f"payloads that are not encrypted are ACCEPTED until "
                              f"{until.isoformat()} (RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL)")
    passed = plaintext_window_warning(Settings.model_validate(
        {"payload_encryption_keys": keys, "payload_accept_plaintext_until": "2020-01-01"}))
    assert passed == ("RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL=2020-01-01T00:00:00+00:00 has "
                      "passed: payloads that are not encrypted are refused; remove the setting")


def test_keys_show_in_no_repr_or_str() -> None:
    codec = EncryptionCodec([OLD, NEW])
    settings = Settings(payload_encryption_keys=SecretStr(f"{_entry(OLD)},{_entry(NEW)}"),
                        codec_server_token=SecretStr("t0ken-t0ken"))
    shown = " ".join([repr(OLD), str(OLD), repr(codec), str(codec), repr(settings), str(settings),
                      repr(payload_codec(settings))])
    assert "2025-01" in shown
    for secret in [*SECRET_TEXTS, repr(OLD.secret), repr(NEW.secret), "t0ken-t0ken"]:
        assert secret not in shown


def test_keys_come_from_a_file_or_the_variable_the_last_one_active(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# rotated 2026-06\n{_entry(OLD)}\n\n{_entry(NEW)}  # active\n")
    from_file = payload_codec(Settings(payload_encryption_keys_file=keys_file))
    from_env = payload_codec(
        Settings(payload_encryption_keys=SecretStr(f"{_entry(OLD)}, {_entry(NEW)}")))
    for codec in (from_file, from_env):
        assert codec is not None
        assert codec.key_ids == ("2025-01", "2026-06")
        assert codec.active_key_id == "2026-06"
    pinned = payload_codec(Settings(payload_encryption_keys_file=keys_file,
                                    payload_encryption_key_id="2025-01"))
    assert pinned is not None
    assert pinned.active_key_id == "2025-01"
    assert payload_codec(Settings()) is None  # off by default


def test_a_generated_key_entry_parses() -> None:
    [key] = parse_keys(new_key_entry("k-1"), source="test")
    assert (key.key_id, len(key.secret)) == ("k-1", 32)


@pytest.mark.parametrize(("keys", "expected"), [
    ("2025-01", "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: entry 1: expected id:base64-key"),
    (f"{_entry(OLD)},k2:not*base64", "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: entry 2: not base64"),
    (f"k:{base64.b64encode(b'short').decode()}",
     "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: entry 1: the key is 5 bytes, AES-256 needs 32"),
    (f"{SECRET_TEXTS[0]}:{SECRET_TEXTS[1]}",  # id and key the wrong way round
     "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: entry 1: the key id must be"),
    (f"{SECRET_TEXTS[2]}:main",  # a hex key where the id goes, an id that is base64
     "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: entry 1: the key is 3 bytes, AES-256 needs 32"),
    (f"{_entry(OLD)},{_entry(OLD)}",
     "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: key id '2025-01' is listed twice"),
    (" , ", "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: the variable holds no key"),
])
def test_bad_keys_are_refused_naming_the_setting_never_a_key(keys: str, expected: str) -> None:
    with pytest.raises(PayloadKeyError) as caught:
        payload_codec(Settings(payload_encryption_keys=SecretStr(keys)))
    assert str(caught.value).startswith(expected)
    assert not any(secret in str(caught.value) for secret in SECRET_TEXTS)


def test_bad_key_settings_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(PayloadKeyError, match=f"_KEYS_FILE: cannot read {missing}: No such file"):
        read_keys(None, missing)
    with pytest.raises(PayloadKeyError, match="are both set; set one"):
        read_keys(_entry(OLD), missing)
    with pytest.raises(PayloadKeyError, match="_KEY_ID: 'nope' is not among the configured"):
        payload_codec(Settings(payload_encryption_keys=SecretStr(_entry(OLD)),
                               payload_encryption_key_id="nope"))
    with pytest.raises(PayloadKeyError, match="_KEY_ID is set but no keys are"):
        payload_codec(Settings(payload_encryption_key_id="2025-01"))


async def test_the_data_converter_encrypts_values_and_failure_messages() -> None:
    order = order_placed()
    converter = data_converter(Settings(payload_encryption_keys=SecretStr(_entry(NEW))))
    [payload] = await converter.encode([order])
    assert order.order_id.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [type(order)]) == [order]

    failure = Failure()
    await converter.encode_failure(ApplicationError(f"order {order.order_id} out of stock"),
                                   failure)
    assert order.order_id.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == f"order {order.order_id} out of stock"


def test_as_env_hands_the_keys_to_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Settings(payload_encryption_keys=SecretStr(_entry(NEW)),
                      codec_server_token=SecretStr("t0ken-t0ken"))
    env = parent.as_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.payload_encryption_keys == parent.payload_encryption_keys
    assert child.codec_server_token == parent.codec_server_token


@pytest.mark.parametrize("command", [["worker"], ["bridge"], ["run"], ["codec-server"]])
def test_bad_keys_stop_a_command_with_one_line(command: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS", f"k:{SECRET_TEXTS[0][:-1]}")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.stderr == "relayflow: RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS: entry 1: not base64\n"
    assert SECRET_TEXTS[0][:-1] not in result.output


def test_the_codec_server_needs_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE", raising=False)
    result = CliRunner().invoke(app, ["codec-server"])
    assert result.exit_code == 2
    assert "needs RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS" in result.stderr
