"""Temporal settings: the frontend and how to reach it, and the encryption of stored payloads."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from relayflow.config.base import EnvSettings

__all__ = ["PayloadEncryptionSettings", "TemporalSettings"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class TemporalSettings(EnvSettings):
    """Temporal: the service every workflow runs on, and how to connect to it.

    Attributes:
        temporal_address: ``host:port`` of the Temporal frontend.
        temporal_namespace: Temporal namespace for every workflow.
        temporal_tls: Connect to Temporal over TLS, trusting the system's root
            CAs unless ``temporal_tls_ca_file`` is set. Also on whenever any
            ``temporal_tls_*`` setting or ``temporal_api_key`` is set.
        temporal_tls_ca_file: PEM file of the CA(s) that signed the Temporal
            server's certificate (default: the system's root CAs).
        temporal_tls_cert_file: PEM client certificate (chain) for mTLS; needs
            ``temporal_tls_key_file``.
        temporal_tls_key_file: PEM private key (unencrypted) of the client certificate.
        temporal_tls_server_name: The name the server's certificate is checked
            against, also sent as SNI and HTTP/2 authority (default: the host
            of ``temporal_address``).
        temporal_api_key: API key (Temporal Cloud), sent as ``authorization:
            Bearer <key>`` on every call, over TLS. Never logged.
        temporal_keepalive_interval_seconds: How often a client pings its
            connection to Temporal (HTTP/2 keep-alive), so that a connection
            that went dead without being closed (a peer or firewall that
            drops packets) is found.
        temporal_keepalive_timeout_seconds: How long a keep-alive ping may go
            unanswered before the connection is dropped and a new one made:
            a hung connection is given up within about the interval plus this.
        task_queue: Task queue the worker polls and the bridge starts workflows on.
        endings_sweep_seconds: How often the ending sweep looks for workflows
            of the application that were terminated, timed out or failed
            without their terminal event (``docs/concepts/terminal-events.md``): the
            interval of the Temporal Schedule the worker creates or updates at
            start. 0: the worker leaves the schedule alone (none is created).
        endings_window_seconds: How far back each sweep looks, by close time: an
            execution that closed while no worker ran for longer than this is
            not swept. Keep it below the namespace's retention period.
        worker_deployment_name: The Temporal Worker Deployment the worker runs
            a version of (``docs/operating/safe-deploys.md``), and the one
            ``relayflow deployment`` shows and promotes in. The worker needs
            ``worker_build_id`` with it. Unset: the worker is unversioned.
        worker_build_id: The worker's build within ``worker_deployment_name``
            (e.g. the image tag or commit); one id per build of the code.
    """

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    temporal_keepalive_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    temporal_keepalive_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    task_queue: str = "relayflow"
    endings_sweep_seconds: int = Field(default=30, ge=0)
    endings_window_seconds: int = Field(default=6 * 3600, gt=0)
    worker_deployment_name: str | None = None
    worker_build_id: str | None = None

    @model_validator(mode="after")
    def _build_of_a_deployment(self) -> TemporalSettings:
        if self.worker_build_id is not None and self.worker_deployment_name is None:
            raise ValueError("worker_build_id is a build of worker_deployment_name: set that too")
        return self

    @property
    def temporal_uses_tls(self) -> bool:
        """True when the Temporal client connects over TLS (see ``temporal_tls``)."""
        return self.temporal_tls or any(value is not None for value in (
            self.temporal_tls_ca_file, self.temporal_tls_cert_file, self.temporal_tls_key_file,
            self.temporal_tls_server_name, self.temporal_api_key))


class PayloadEncryptionSettings(EnvSettings):
    """Payload encryption: what Temporal stores, and the codec server that shows it decrypted.

    The codec is built by ``relayflow.temporal.payload_codec.payload_codec``.

    Attributes:
        payload_encryption_keys: Temporal payload encryption keys as
            ``id:base64-of-32-bytes`` entries, comma- or newline-separated
            (``relayflow.temporal.payload_codec``). Unset (and no keys file): payloads
            are stored in clear.
        payload_encryption_keys_file: A file of such entries, one a line
            (instead of ``payload_encryption_keys``).
        payload_encryption_key_id: The key that encrypts new payloads; default
            the last one listed. Every listed key decrypts.
        payload_accept_plaintext_until: A migration window: until this instant
            (ISO 8601 with a UTC offset, or a date, meaning 00:00 UTC that day)
            payloads that are not encrypted are decoded as they are; from then
            on, and when unset, they are refused. Set it only while switching
            encryption on under open workflows, to cover the longest of them;
            each process logs a warning at start while it is set. Needs keys.
        codec_server_token: The bearer token ``relayflow codec-server``
            requires (``Authorization: Bearer <token>``) on every request.
            Without it the server refuses to start, unless run with
            ``--dev-no-token`` on a loopback address.
        codec_server_origins: Comma-separated browser origins allowed to call
            the codec server (the Temporal UI's); default the dev stack's UI.
            ``*`` (any origin, answered without credentials) needs a token.
        codec_server_hosts: Comma-separated names the ``Host`` header of a
            request may carry besides the bind address and ``localhost``,
            ``127.0.0.1``, ``::1`` (the name a TLS terminator in front serves
            it as); any other Host is refused (421).
        codec_server_max_body_bytes: Largest request body the codec server
            reads; a larger ``Content-Length`` is refused (413) unread.
        codec_server_max_connections: Connections the codec server keeps open
            at most; when full, the oldest one still waiting for its request
            is closed for a new one.
        codec_server_request_timeout_seconds: Time a request (head and body)
            may take to arrive at the codec server, and its answer to be taken;
            a slower client is cut off.
    """

    payload_encryption_keys: SecretStr | None = None
    payload_encryption_keys_file: Path | None = None
    payload_encryption_key_id: str | None = None
    payload_accept_plaintext_until: datetime | None = None
    codec_server_token: SecretStr | None = None
    codec_server_origins: str | None = None
    codec_server_hosts: str | None = None
    codec_server_max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    codec_server_max_connections: int = Field(default=128, gt=0)
    codec_server_request_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("payload_accept_plaintext_until", mode="before")
    @classmethod
    def _an_instant(cls, value: object) -> object:
        """A date is 00:00 UTC that day; a time of day needs its UTC offset (no guessing)."""
        if isinstance(value, str) and _DATE.fullmatch(value.strip()):
            return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip())
        if isinstance(value, datetime) and value.tzinfo is None:
            msg = "give the instant with its UTC offset (e.g. 2026-07-01T00:00:00Z), or a date"
            raise ValueError(msg)
        return value

    @property
    def codec_server_host_names(self) -> frozenset[str]:
        """``codec_server_hosts`` as a set of names."""
        return frozenset(h.strip() for h in (self.codec_server_hosts or "").split(",")
                         if h.strip())
