"""Ed25519 signatures on events: the canonical message, signing keys and trusted public keys.

An application that needs to know who produced an event (a person's
approval) has the producer sign a *canonical message* of the fields that
matter and checks it against a registry of public keys it trusts. This
module is the part every language can reproduce from its description:

- ``canonical_message(tag, fields)``: the UTF-8 bytes of ``tag``, then each
  field as a 4-byte big-endian length and its UTF-8 bytes, an absent field
  (None) as the length ``0xFFFFFFFF`` and nothing else. Length prefixes make
  the encoding injective: no two field lists give the same bytes, so a
  signature cannot be moved from one value to another by shifting text
  between fields. The tag names the event type and the version of the
  field list, so a signature of one kind of message never verifies as another.
- Keys are raw Ed25519 keys (RFC 8032) in standard base64: 32 bytes of
  public key, 32 bytes of private seed.
- A signing key file is JSON: ``{"key_id", "private_key", "acts_for"}``
  (``acts_for`` is the holder's note of what the key is registered for).
- A registry of trusted keys is JSON: ``{"keys": [TrustedKey, ...]}``.

Pure functions and models (no network I/O), so workflow code can verify.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import struct
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.models import Key, UtcDatetime

__all__ = [
    "ABSENT",
    "KeyRegistry",
    "SigningKey",
    "TrustedKey",
    "canonical_message",
]

ABSENT = 0xFFFF_FFFF
"""Length prefix of a field that is absent (None): distinct from an empty string."""
_RAW_KEY_BYTES = 32


def canonical_message(tag: str, fields: Sequence[str | None]) -> bytes:
    """The bytes a signature covers: ``tag``, then every field length-prefixed (module docs).

    Args:
        tag: Names the message kind and its version (``relayflow.approvals.ApprovalDecided/v1``).
        fields: The signed fields' text, in the order the tag's version fixes.
    """
    parts = [tag.encode()]
    for value in fields:
        if value is None:
            parts.append(struct.pack(">I", ABSENT))
        else:
            data = value.encode()
            parts.append(struct.pack(">I", len(data)) + data)
    return b"".join(parts)


def _resolve_invalid_signature() -> None:
    """Have cryptography's native code resolve ``InvalidSignature`` now, outside any sandbox.

    It imports the exception type lazily, the first time it raises one; inside
    Temporal's workflow sandbox that import fails and the native code aborts
    the whole worker process (a forged signature would kill the worker).
    Resolved here, at import (which the sandbox passes through), it stays
    cached for the process. tests/unit/relayflow/reference/test_order_saga.py
    verifies bad signatures in workflow code.
    """
    public = Ed25519PrivateKey.from_private_bytes(bytes(_RAW_KEY_BYTES)).public_key()
    with contextlib.suppress(InvalidSignature):
        public.verify(bytes(64), b"")


_resolve_invalid_signature()


def _raw(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not standard base64") from None
    if len(raw) != _RAW_KEY_BYTES:
        raise ValueError(f"{what} must be {_RAW_KEY_BYTES} bytes, not {len(raw)}")
    return raw


class TrustedKey(BaseModel):
    """A public key the verifier trusts, and whose decisions it may sign.

    Attributes:
        key_id: Names the key in signed events (``key_id``); unique in a registry.
        public_key: The raw 32-byte Ed25519 public key, standard base64.
        acts_for: Whom the key may sign for: a name ``G`` covers ``G`` and
            ``G/<person>`` (a group's or a console's key); ``G/P`` covers
            exactly ``G/P`` (a person's key).
        not_before: The key is not valid before this time (None: always was).
        not_after: The key is not valid from this time on (None: until removed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: Key
    public_key: str
    acts_for: tuple[Key, ...] = Field(min_length=1)
    not_before: UtcDatetime | None = None
    not_after: UtcDatetime | None = None

    @field_validator("public_key")
    @classmethod
    def _ed25519(cls, text: str) -> str:
        _raw(text, "public_key")
        return text

    def valid_at(self, moment: datetime) -> bool:
        """Whether ``moment`` lies in the key's validity."""
        return ((self.not_before is None or self.not_before <= moment)
                and (self.not_after is None or moment < self.not_after))

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        public = Ed25519PublicKey.from_public_bytes(_raw(self.public_key, "public_key"))
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class KeyRegistry(BaseModel):
    """The trusted public keys (a registry file's content).

    Attributes:
        keys: Every trusted key; key ids are unique.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: tuple[TrustedKey, ...] = ()

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: tuple[TrustedKey, ...]) -> tuple[TrustedKey, ...]:
        ids = [k.key_id for k in keys]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        if doubled:
            raise ValueError(f"key ids given more than once: {', '.join(doubled)}")
        return keys

    def find(self, key_id: str) -> TrustedKey | None:
        """The key named ``key_id``, or None."""
        return next((k for k in self.keys if k.key_id == key_id), None)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a registry file.

        Raises:
            ValueError: It cannot be read, is not JSON, or is not a registry
                (one line that names the file and the problem).
        """
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as error:
            raise ValueError(f"{path}: cannot read: {error.strerror}") from None
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in error.errors())
            raise ValueError(f"{path}: not a key registry: {problems}") from None

    def with_key(self, key: TrustedKey) -> KeyRegistry:
        """This registry plus ``key`` (replacing a key of the same id)."""
        return KeyRegistry(keys=(*(k for k in self.keys if k.key_id != key.key_id), key))


class SigningKey:
    """A private Ed25519 key and the id it is registered under.

    Args:
        key_id: The id of its public key in the verifier's registry.
        private: The private key.
        acts_for: What the key is registered for (the holder's note; the
            registry is what the verifier trusts).
    """

    def __init__(self, key_id: str, private: Ed25519PrivateKey,
                 acts_for: Sequence[str] = ()) -> None:
        self.key_id, self._private, self.acts_for = key_id, private, tuple(acts_for)

    @classmethod
    def generate(cls, key_id: str, acts_for: Sequence[str] = ()) -> Self:
        """A new random key."""
        return cls(key_id, Ed25519PrivateKey.generate(), acts_for)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)

    @property
    def public_key(self) -> str:
        """The raw public key, standard base64 (what the registry lists)."""
        return base64.b64encode(self._private.public_key().public_bytes_raw()).decode()

    def trusted(self, acts_for: Sequence[str] | None = None, *,
                not_before: datetime | None = None,
                not_after: datetime | None = None) -> TrustedKey:
        """The registry entry of this key (``acts_for`` default: the key's own note)."""
        return TrustedKey(key_id=self.key_id, public_key=self.public_key,
                          acts_for=tuple(self.acts_for if acts_for is None else acts_for),
                          not_before=not_before, not_after=not_after)

    def save(self, path: Path) -> None:
        """Write the key file, readable by its owner only (created 0600, never widened).

        Raises:
            FileExistsError: ``path`` exists: a key is never overwritten.
        """
        seed = self._private.private_bytes_raw()
        text = json.dumps({"key_id": self.key_id, "private_key": base64.b64encode(seed).decode(),
                           "acts_for": list(self.acts_for)}, indent=2) + "\n"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a key file.

        Raises:
            ValueError: It cannot be read or is not a key file (the key itself
                is never part of the message).
        """
        try:
            data = json.loads(path.read_bytes())
        except OSError as error:
            raise ValueError(f"{path}: cannot read: {error.strerror}") from None
        except ValueError:
            raise ValueError(f"{path}: not a signing key file: not JSON") from None
        if not isinstance(data, dict) or not {"key_id", "private_key"} <= set(data):
            raise ValueError(f"{path}: not a signing key file: key_id and private_key expected")
        try:
            seed = _raw(str(data["private_key"]), "private_key")
        except ValueError as error:  # our own message: it never quotes the key
            raise ValueError(f"{path}: not a signing key file: {error}") from None
        key_id = str(data["key_id"])
        acts_for = [str(a) for a in data.get("acts_for") or []]
        if not key_id:
            raise ValueError(f"{path}: not a signing key file: empty key_id")
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(seed), acts_for)
