"""The canonical message, signing key files and the registry of trusted keys."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.signatures import KeyRegistry, SigningKey, TrustedKey, canonical_message

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_canonical_message_is_the_tag_and_length_prefixed_fields() -> None:
    # Written out by hand: what another language must produce byte for byte.
    assert canonical_message("t/v1", ["ab", "", None]) == b"".join([
        b"t/v1", b"\x00\x00\x00\x02ab", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"])
    assert canonical_message("t", ["é"]) == b"t\x00\x00\x00\x02\xc3\xa9"  # UTF-8 bytes counted


@pytest.mark.parametrize(("a", "b"), [
    (["ab", "c"], ["a", "bc"]),      # text moved across a field boundary
    (["", None], [None, ""]),        # empty is not absent
    (["a"], ["a", None]),            # a field more
])
def test_distinct_field_lists_never_share_a_message(a: list[str | None],
                                                    b: list[str | None]) -> None:
    assert canonical_message("t", a) != canonical_message("t", b)


def test_a_signature_verifies_only_its_message_and_its_key() -> None:
    key, other = SigningKey.generate("k", ["g"]), SigningKey.generate("o", ["g"])
    signature = key.sign(b"message")
    assert key.trusted().verifies(b"message", signature)
    assert not key.trusted().verifies(b"messagf", signature)
    assert not other.trusted().verifies(b"message", signature)
    assert not key.trusted().verifies(b"message", signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not key.trusted().verifies(b"message", b"short")


def test_a_key_file_is_private_never_overwritten_and_reads_back(tmp_path: Path) -> None:
    key = SigningKey.generate("ann-2026", ["orders-approvers/ann"])
    path = tmp_path / "ann.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        SigningKey.generate("x").save(path)
    loaded = SigningKey.load(path)
    assert (loaded.key_id, loaded.public_key, loaded.acts_for) == (
        "ann-2026", key.public_key, ("orders-approvers/ann",))
    assert key.trusted().verifies(b"m", loaded.sign(b"m"))


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"key_id": "k"}', '{"key_id": "k", "private_key": "%%%"}',
    '{"key_id": "k", "private_key": "' + base64.b64encode(b"x" * 31).decode() + '"}',
    '{"key_id": "", "private_key": "' + base64.b64encode(b"x" * 32).decode() + '"}',
])
def test_a_bad_key_file_is_one_line_that_never_quotes_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(ValueError, match="not a signing key file") as raised:
        SigningKey.load(path)
    assert "\n" not in str(raised.value)
    assert "%%%" not in str(raised.value)


def test_the_registry_reads_its_file_and_finds_keys(tmp_path: Path) -> None:
    key = SigningKey.generate("k1", ["g"])
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [json.loads(key.trusted().model_dump_json())]}))
    registry = KeyRegistry.load(path)
    assert registry.find("k1") == key.trusted()
    assert registry.find("k2") is None
    replaced = registry.with_key(key.trusted(["h"]))
    assert [k.acts_for for k in replaced.keys] == [("h",)]


@pytest.mark.parametrize(("content", "problem"), [
    ('{"keys": [{"key_id": "k", "public_key": "AAAA", "acts_for": ["g"]}]}', "32 bytes"),
    ('{"keys": [{"key_id": "k", "public_key": "%s", "acts_for": []}]}', "acts_for"),
    ('{"keys": [%s, %s]}', "more than once"),
    ('{"keys": [], "extra": 1}', "extra"),
    ("{", "not a key registry"),
])
def test_a_bad_registry_says_what_is_wrong(tmp_path: Path, content: str, problem: str) -> None:
    key = SigningKey.generate("k", ["g"])
    entry = key.trusted().model_dump_json()
    content = content % ((entry, entry) if content.count("%s") == 2 else key.public_key) \
        if "%s" in content else content
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        KeyRegistry.load(path)


def test_validity_is_half_open() -> None:
    key = SigningKey.generate("k", ["g"]).trusted(not_before=NOW,
                                                 not_after=NOW + timedelta(days=1))
    assert not key.valid_at(NOW - timedelta(milliseconds=1))
    assert key.valid_at(NOW)
    assert not key.valid_at(NOW + timedelta(days=1))
    with pytest.raises(ValidationError):
        TrustedKey(key_id="k", public_key=key.public_key, acts_for=("g",),
                   not_before=datetime(2026, 1, 1))  # naive: refused  # noqa: DTZ001
