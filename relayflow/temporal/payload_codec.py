"""Payload encryption: a Temporal ``PayloadCodec`` doing AES-256-GCM with named, rotating keys.

Every payload the bridge, the worker and the CLI hand to Temporal (workflow
inputs and results, activity arguments and results, signals, queries, and
failure messages) is stored as ciphertext::

    metadata: encoding=binary/encrypted, encryption-cipher=AES-256-GCM,
              encryption-key-id=<id>
    data:     12-byte random nonce || AES-256-GCM(original Payload protobuf)

The key id is authenticated along with the ciphertext. The newest key (or the
one named active) encrypts; every configured key decrypts, so keys rotate by
adding a new one and dropping an old one only once no open history needs it.

A payload without the ``binary/encrypted`` encoding is refused on decoding
(``PlaintextPayloadRefused``): whoever can signal, start or query a workflow
without the keys (``temporal workflow signal``, a client without the codec)
must not get a payload acted on by a worker that encrypts. To switch
encryption on under open workflows whose histories hold plaintext, a window
(``RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL``) accepts plaintext until a
stated instant. Temporal runs codecs on payloads only: search attributes, and
headers (the SDK's default), never reach this codec, and the failures the
server and the SDK core make (timeouts, terminations, cancellations) carry
no payload, so nothing Temporal itself sends is refused.

Keys are ``id:base64-of-32-bytes`` entries (one a line in a file; comma- or
newline-separated in an environment variable; ``#`` starts a comment). Keys
never appear in a repr, a log line or an error message; key ids do.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from relayflow.config import SettingError

if TYPE_CHECKING:
    from relayflow.config.temporal import PayloadEncryptionSettings

__all__ = [
    "CIPHER",
    "ENCRYPTED_ENCODING",
    "KEY_ID_METADATA",
    "EncryptionCodec",
    "EncryptionKey",
    "PayloadDecryptionError",
    "PayloadKeyError",
    "PlaintextPayloadRefused",
    "UnknownEncryptionKey",
    "new_key_entry",
    "parse_keys",
    "payload_codec",
    "plaintext_window_warning",
    "read_keys",
]

ENCRYPTED_ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of an encrypted payload."""
KEY_ID_METADATA = "encryption-key-id"
"""Metadata naming the key a payload was encrypted with."""
CIPHER_METADATA = "encryption-cipher"
CIPHER = b"AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12  # 96 bits: GCM's native nonce size; random per payload
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SHOWN_ID_CHARS = 64  # a key id read from a payload is untrusted input: shown truncated
ACCEPT_PLAINTEXT_SETTING = "RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL"


class PayloadKeyError(SettingError):
    """The configured keys are unusable; the message names the setting, never a key."""


class PayloadDecryptionError(Exception):
    """An encrypted payload could not be decrypted (tampered, or encrypted with another key)."""


class UnknownEncryptionKey(PayloadDecryptionError):
    """A payload names a key id that is not configured.

    Attributes:
        key_id: The id the payload names.
    """

    def __init__(self, key_id: str, configured: Sequence[str]) -> None:
        self.key_id = key_id
        super().__init__(
            f"payload encrypted with key id {key_id[:_SHOWN_ID_CHARS]!r}, which is not "
            f"configured (configured: {', '.join(configured)}); add that key to "
            "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS or RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE")


class PlaintextPayloadRefused(PayloadDecryptionError):
    """A payload is not encrypted while encryption is on (and no plaintext window is open).

    The message names the payload's ``encoding`` (truncated) and the
    migration setting, never the payload's data.

    Attributes:
        encoding: The payload's ``encoding`` metadata, as given (untrusted input).
    """

    def __init__(self, encoding: bytes, until: datetime | None) -> None:
        self.encoding = encoding
        shown = encoding[:_SHOWN_ID_CHARS].decode(errors="replace")
        window = ("no plaintext window is set" if until is None else
                  f"the plaintext window ended at {until.isoformat()}")
        super().__init__(
            f"refused a payload that is not encrypted (encoding {shown!r}): payload encryption "
            f"is on and {window}; it was sent by a client without the keys, or stored before "
            f"encryption was turned on (for a migration, see {ACCEPT_PLAINTEXT_SETTING})")


@dataclass(frozen=True)
class EncryptionKey:
    """One named AES-256 key.

    Attributes:
        key_id: Short public name stored in each payload's metadata
            (letters, digits, ``.``, ``_``, ``-``; at most 64).
        secret: The 32 key bytes; left out of ``repr``.
    """

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        """Refuse a malformed id or a key of the wrong length."""
        if not _KEY_ID.fullmatch(self.key_id):
            # Not echoed: a key pasted the wrong way round would land here.
            raise PayloadKeyError("the key id must be 1-64 letters, digits, '.', '_' or '-'")
        if len(self.secret) != KEY_BYTES:
            # Nor the id: with id and key swapped, the "id" is the key.
            raise PayloadKeyError(f"the key is {len(self.secret)} bytes, AES-256 needs {KEY_BYTES}")


def new_key_entry(key_id: str) -> str:
    """A fresh random key as a ``id:base64`` entry, ready for the keys file or variable."""
    key = EncryptionKey(key_id, os.urandom(KEY_BYTES))
    return f"{key.key_id}:{base64.b64encode(key.secret).decode()}"


def parse_keys(text: str, *, source: str) -> list[EncryptionKey]:
    """Keys from ``id:base64`` entries, in the order given.

    Args:
        text: Entries separated by commas or newlines; blank entries and
            ``#`` comments are ignored.
        source: The setting the text came from, for error messages.

    Raises:
        PayloadKeyError: An entry is malformed, a key is not 32 bytes, or an
            id repeats. The message names ``source`` and the entry's position,
            never the key.
    """
    keys: list[EncryptionKey] = []
    entries = (line.split("#", 1)[0].strip() for line in re.split(r"[,\n]", text))
    for number, entry in enumerate((e for e in entries if e), start=1):
        key_id, colon, encoded = entry.partition(":")
        if not colon:
            raise PayloadKeyError(f"{source}: entry {number}: expected id:base64-key")
        try:
            keys.append(EncryptionKey(key_id.strip(),
                                      base64.b64decode(encoded.strip(), validate=True)))
        except (binascii.Error, PayloadKeyError) as error:
            # binascii's message never quotes the input; ours never quote a key.
            detail = "not base64" if isinstance(error, binascii.Error) else str(error)
            raise PayloadKeyError(f"{source}: entry {number}: {detail}") from None
    ids = [key.key_id for key in keys]
    if repeated := sorted({i for i in ids if ids.count(i) > 1}):
        raise PayloadKeyError(f"{source}: key id {repeated[0]!r} is listed twice")
    return keys


def read_keys(keys: str | None, keys_file: Path | None) -> list[EncryptionKey]:
    """The configured keys: from the variable's text, or from the file (not both); [] if neither.

    Args:
        keys: ``RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS``'s value, if set.
        keys_file: ``RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE``, if set.

    Raises:
        PayloadKeyError: Both are set, the file is unreadable, the one set
            holds no key, or an entry is bad.
    """
    if keys is not None and keys_file is not None:
        raise PayloadKeyError("RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS and "
                              "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE are both set; set one")
    source, where = "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS", "the variable"
    if keys_file is not None:
        source, where = "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE", str(keys_file)
        try:
            keys = keys_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise PayloadKeyError(f"{source}: cannot read {keys_file}: {reason}") from None
    if keys is None:
        return []
    if not (found := parse_keys(keys, source=source)):
        # Set but empty is a mistake, not "off": payloads would go out in clear.
        raise PayloadKeyError(f"{source}: {where} holds no key")
    return found


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads; the active key encrypts, every key decrypts.

    Payloads that are not encrypted are refused on decoding, unless
    ``accept_plaintext_until`` is still ahead (read at each decoding, so a
    running worker starts refusing when the window ends).

    Args:
        keys: Every key that may have encrypted a stored payload.
        active_key_id: The key that encrypts new payloads (default: the last of ``keys``).
        accept_plaintext_until: Until when payloads that are not encrypted are
            decoded as they are (timezone-aware); None: never.

    Raises:
        PayloadKeyError: No keys, a repeated id, or ``active_key_id`` is not among them.
    """

    def __init__(self, keys: Sequence[EncryptionKey], active_key_id: str | None = None, *,
                 accept_plaintext_until: datetime | None = None) -> None:
        super().__init__()
        self.accept_plaintext_until = accept_plaintext_until
        if not keys:
            raise PayloadKeyError("payload encryption needs at least one key")
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}
        if len(self._ciphers) != len(keys):
            raise PayloadKeyError("payload encryption keys: a key id is listed twice")
        self.active_key_id = active_key_id or keys[-1].key_id
        if self.active_key_id not in self._ciphers:
            raise PayloadKeyError(
                f"RELAYFLOW_PAYLOAD_ENCRYPTION_KEY_ID: {self.active_key_id!r} is not among the "
                f"configured keys ({', '.join(self._ciphers)})")

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every key this codec decrypts with, as configured."""
        return tuple(self._ciphers)

    @property
    def accepts_plaintext(self) -> bool:
        """Whether the plaintext window is open now."""
        until = self.accept_plaintext_until
        return until is not None and datetime.now(UTC) < until

    def __repr__(self) -> str:
        """Key ids only."""
        return f"EncryptionCodec(active_key_id={self.active_key_id!r}, key_ids={self.key_ids!r})"

    def encrypt(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload encrypted whole (data and metadata) with the active key."""
        key_id = self.active_key_id
        cipher = self._ciphers[key_id]
        aad = key_id.encode()
        encrypted = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), aad)
            encrypted.append(Payload(
                metadata={"encoding": ENCRYPTED_ENCODING, CIPHER_METADATA: CIPHER,
                          KEY_ID_METADATA: aad},
                data=nonce + sealed,
            ))
        return encrypted

    def decrypt(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The original payloads; unencrypted ones only while the plaintext window is open.

        Raises:
            PlaintextPayloadRefused: A payload is not encrypted and the window is not open.
            UnknownEncryptionKey: A payload names a key id that is not configured.
            PayloadDecryptionError: A payload fails authentication (tampered
                ciphertext, nonce or key id) or is malformed.
        """
        if not self.accepts_plaintext:
            for payload in payloads:
                if (encoding := payload.metadata.get("encoding", b"")) != ENCRYPTED_ENCODING:
                    raise PlaintextPayloadRefused(encoding, self.accept_plaintext_until)
        return self.reveal(payloads)

    def reveal(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The original payloads, ones that are not encrypted as they are: for reading, not acting.

        The codec server answers with this: an operator reading a history
        must see a plaintext payload someone injected, which is stored in clear anyway.

        Raises:
            UnknownEncryptionKey: A payload names a key id that is not configured.
            PayloadDecryptionError: A payload fails authentication or is malformed.
        """
        return [self._decrypt_one(p) if p.metadata.get("encoding") == ENCRYPTED_ENCODING else p
                for p in payloads]

    def _decrypt_one(self, payload: Payload) -> Payload:
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownEncryptionKey(key_id, self.key_ids)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, raw_id)
        except (InvalidTag, ValueError):
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r} fails authentication: "
                "tampered with, or encrypted with another key of that id") from None
        return Payload.FromString(plain)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt (``PayloadCodec`` API); see ``encrypt``."""
        return self.encrypt(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt (``PayloadCodec`` API); see ``decrypt``."""
        return self.decrypt(payloads)


def payload_codec(settings: PayloadEncryptionSettings) -> EncryptionCodec | None:
    """The payload encryption codec of the configured keys; None when none are.

    Args:
        settings: relayflow's settings (``payload_encryption_keys``, ``_keys_file``,
            ``_key_id``, ``payload_accept_plaintext_until``).

    Raises:
        PayloadKeyError: The keys are unusable, or a key id or plaintext window
            is set without keys; one line naming the setting, never a key.
    """
    keys_text = settings.payload_encryption_keys
    if keys_text is None and settings.payload_encryption_keys_file is None:
        for name, value in (("RELAYFLOW_PAYLOAD_ENCRYPTION_KEY_ID",
                             settings.payload_encryption_key_id),
                            (ACCEPT_PLAINTEXT_SETTING, settings.payload_accept_plaintext_until)):
            if value is not None:
                raise PayloadKeyError(f"{name} is set but no keys are "
                                      "(RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS or _KEYS_FILE)")
        return None
    keys = read_keys(None if keys_text is None else keys_text.get_secret_value(),
                     settings.payload_encryption_keys_file)
    return EncryptionCodec(keys, settings.payload_encryption_key_id,
                           accept_plaintext_until=settings.payload_accept_plaintext_until)


def plaintext_window_warning(settings: PayloadEncryptionSettings) -> str | None:
    """The warning a process logs at start while a plaintext window is set; None when none is.

    Args:
        settings: relayflow's settings (``payload_accept_plaintext_until``).
    """
    until = settings.payload_accept_plaintext_until
    if until is None:
        return None
    if datetime.now(UTC) >= until:
        return (f"{ACCEPT_PLAINTEXT_SETTING}={until.isoformat()} has passed: payloads that "
                "are not encrypted are refused; remove the setting")
    return (f"payloads that are not encrypted are ACCEPTED until {until.isoformat()} "
            f"({ACCEPT_PLAINTEXT_SETTING}): anyone who can signal or start a workflow without "
            "the keys can have a worker act on plaintext; remove it once no open workflow "
            "holds plaintext")
