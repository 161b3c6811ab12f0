"""Runtime settings, read from ``RELAYFLOW_*`` environment variables.

Every mode (local dev stack, docker compose, an existing cluster) uses the same
names, so pointing relayflow at another Kafka or Temporal is only a matter of
exporting different values.

Secrets can come from files instead: with ``RELAYFLOW_SECRETS_DIR`` set (e.g.
``/run/secrets``, where Docker and Kubernetes mount them), a file there named
like a variable (``RELAYFLOW_KAFKA_SASL_PASSWORD``, case ignored) gives that
setting its content, trailing whitespace stripped. A variable that is set wins
over its file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bridge.decoding import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT
from relayflow.config.networks import Network, parse_networks
from relayflow.kafka.schema_registry import HttpSchemaRegistry, redacted_url

if TYPE_CHECKING:
    from relayflow.temporal.payload_codec import EncryptionCodec


__all__ = ["MIN_HEADER_BYTES", "MIN_HEADER_COUNT", "KafkaSaslMechanism",
           "KafkaSecurityProtocol", "SettingError", "Settings", "get_settings", "load_settings",
           "setting_errors"]

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
"""How Kafka clients connect: TLS or not, SASL or not (Kafka's ``security.protocol``)."""
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
"""SASL mechanisms relayflow's clients speak (Kafka's ``sasl.mechanism``)."""

_TLS = frozenset({"SSL", "SASL_SSL"})
_SASL = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_PEM_FILES = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")


class SettingError(ValueError):
    """A setting is missing, malformed, inconsistent or refused; each line of the message names it.

    Raised when a process starts (or first connects), so it stops before doing anything;
    the CLI prints the message (and no traceback) and exits with status 2.
    """


MIN_HEADER_COUNT = 9
"""Lowest ``max_header_count``: the contract's six headers plus the three of a DLQ replay."""
MIN_HEADER_BYTES = 2048
"""Lowest ``max_header_bytes``: room for those nine at their longest (ids of 200 characters)."""

_SECRETS_DIR = "RELAYFLOW_SECRETS_DIR"


class _SecretFiles(SecretsSettingsSource):
    """Settings from the files of ``RELAYFLOW_SECRETS_DIR``; an unreadable one: SettingError."""

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError as error:  # pydantic-settings wraps what get_field_value raised
            if isinstance(error.__cause__, SettingError):
                raise error.__cause__ from None
            raise

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        try:
            return super().get_field_value(field, field_name)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SettingError(f"{_SECRETS_DIR}: the file of RELAYFLOW_{field_name.upper()} "
                               f"cannot be read: {reason}") from None


class Settings(BaseSettings):
    """All relayflow configuration.

    Attributes:
        app: The application the bridge and the worker run, as
            ``module:attribute`` naming an ``relayflow.application.Application``
            (default: relayflow's own orders, approvals and batches).
        kafka_bootstrap_servers: Comma-separated ``host:port`` list of Kafka brokers.
        kafka_consumer_group: Consumer group id of the bridge.
        kafka_security_protocol: ``PLAINTEXT`` (default), ``SSL`` (TLS, optionally
            with a client certificate), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL
            over TLS: what managed Kafka services require).
        kafka_sasl_mechanism: ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``;
            required with the SASL protocols.
        kafka_sasl_username: SASL user (the principal ACLs name); required with SASL.
        kafka_sasl_password: SASL password; required with SASL. Never shown.
        kafka_ssl_ca_file: PEM file of the CA(s) that signed the brokers'
            certificates; unset: the system's trust store.
        kafka_ssl_cert_file: PEM client certificate (chain), for brokers that
            demand one (mTLS); its key in the same file or ``kafka_ssl_key_file``.
        kafka_ssl_key_file: PEM private key of the client certificate.
        kafka_ssl_key_password: Password of an encrypted ``kafka_ssl_key_file``. Never shown.
        kafka_ssl_check_hostname: Check that the broker's certificate names the
            host connected to (on by default; the certificate chain is checked either way).
        kafka_dev_secure: ``relayflow dev up`` formats a new dev broker secured
            (SASL_SSL, SCRAM-SHA-512, client certificates, ACLs); same as ``--secure``.
        kafka_dev_brokers: How many KRaft nodes ``relayflow dev up`` formats a
            new dev Kafka with: 1 (default), or 3 (a replicated cluster: each
            node broker and controller, topics at replication factor 3,
            ``min.insync.replicas=2``); same as ``--brokers``.
        kafka_dev_node_ports: Client and controller ports of dev brokers 2
            and 3, as ``port/controller_port`` pairs, comma-separated (e.g.
            ``9094/9095,9096/9097``); default: two apart after ``kafka_port``
            and ``kafka_controller_port``.
        schema_registry_url: A Confluent-compatible schema registry
            (``http(s)://[user:secret@]host:port``). When set, outcomes are
            framed in the Confluent wire format with ids from it (subject: the
            record's full name), and Confluent-framed input records are decoded
            with the schema it holds for their id. Single-object encoded
            records are accepted either way.
        schema_registry_timeout_seconds: Timeout of each registry request.
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
        task_queue: Task queue the worker polls and the bridge starts workflows on.
        data_dir: Folder of the local dev stack and the SQLite store.
        store_path: SQLite file of the reference system's store (inventory,
            payments, shipments). Defaults to ``<data_dir>/store.db``.
        kafka_port: Client port of the local dev Kafka broker.
        kafka_controller_port: KRaft controller port of the local dev broker.
        kafka_advertised_port: The port the local dev broker tells clients to
            use, when a proxy stands in front of it (fault tests put Toxiproxy
            there); default ``kafka_port``.
        kafka_version: Apache Kafka release the dev stack resolves from Maven Central.
        temporal_port: Frontend port of the local Temporal dev server.
        temporal_ui_port: Web UI port of the local Temporal dev server.
        max_payload_bytes: Largest record value the bridge accepts; larger ones
            are dead-lettered (well under Temporal's 2 MB payload limit).
        max_header_count: Most headers a record may carry; records with more are
            dead-lettered as ``bad-header`` before their value is decoded. At
            least ``MIN_HEADER_COUNT``.
        max_header_bytes: Most bytes a record's header names and values may
            total (UTF-8); larger ones are dead-lettered as ``bad-header``
            before their value is decoded. At least ``MIN_HEADER_BYTES``.
        card_limit_cents: Charges above this amount are declined by the
            reference payment activity (a deterministic failure hook).
        log_level: Python logging level name.
        approval_threshold_cents: Orders at or above this amount need a
            person's approval before payment.
        approval_timeout_seconds: Wait for the first approver before escalating.
        escalation_timeout_seconds: Wait for the escalation approver before the
            order fails with ``approval_timed_out``.
        approver: Who decides first (named in ``ApprovalRequested``).
        escalation_approver: Who decides after escalation.
        bridge_signal_hold_seconds: How long the bridge holds a signal for a
            workflow that does not exist yet (retrying) before dead-lettering it.
        bridge_shutdown_seconds: On SIGTERM, how long the bridge waits for the
            Temporal calls in flight before it abandons them (uncommitted).
        bridge_park_keys: Park the key of a dead-lettered record, so later records
            of that key go to the DLQ too (``parked``) until released or replayed.
        bridge_batch_size: Most records the bridge fetches and commits as one batch.
            A batch ends with its slowest records in flight, so larger batches lose
            less throughput at their edges (BENCHMARKS.md); a crash redelivers at
            most one batch.
        bridge_concurrency: Key groups of a batch the bridge processes at once.
        batch_history_event_limit: ``BatchWorkflow`` continues as new once its
            history passes this many events (or when the server suggests it).
        cache_dir: Where the dev stack caches the Kafka jars, by version, so
            later runs start offline.
        payload_encryption_keys: Temporal payload encryption keys as
            ``id:base64-of-32-bytes`` entries, comma- or newline-separated
            (``relayflow.temporal.payload_codec``). Unset (and no keys file): payloads
            are stored in clear.
        payload_encryption_keys_file: A file of such entries, one a line
            (instead of ``payload_encryption_keys``).
        payload_encryption_key_id: The key that encrypts new payloads; default
            the last one listed. Every listed key decrypts.
        codec_server_token: When set, ``relayflow codec-server`` answers only
            requests with ``Authorization: Bearer <token>``.
        codec_server_origins: Comma-separated browser origins allowed to call
            the codec server (the Temporal UI's); default the dev stack's UI.
        secrets_dir: A folder of files named like the variables (e.g.
            ``RELAYFLOW_KAFKA_SASL_PASSWORD``) whose contents are those settings
            (Docker's and Kubernetes' mounted secrets); variables set win. Read
            from the environment only.
        tracing: Export OpenTelemetry spans (``relayflow.observability.tracing``), configured by
            the standard ``OTEL_*`` variables; off by default, costing nothing.
        log_format: ``json`` (one object a line) or ``console`` (readable lines);
            unset: ``json`` unless stderr is a terminal (``relayflow.observability.logs``).
        bridge_http_port: Port of the bridge's HTTP endpoints (``/metrics``,
            ``/health/live``, ``/health/ready``); ``relayflow run`` serves the
            worker's there too. 0 picks a free port (logged); -1 serves none.
        worker_http_port: Port of the worker's HTTP endpoints, as ``bridge_http_port``.
        http_host: Address those endpoints listen on.
        temporal_metrics_port: Port of the Temporal SDK's own Prometheus
            endpoint (``temporal_*`` metrics, served by the SDK's runtime on
            ``http_host``) in bridge and worker processes; -1 serves none.
        metrics: Count relayflow's metrics and serve them on ``/metrics``; off,
            the bridge and the worker count nothing and ``/metrics`` is not
            served (``/health/*`` still are).
        ready_outage_grace_seconds: ``/health/ready`` answers 503 once an
            outage of a dependency (Temporal, Kafka, the schema registry) has
            held records or outcomes back for this long.
        operator_timeout_seconds: How long an operator command (``send``,
            ``tail``, ``decide``, ``status``, ``top``, ``approvals``, ``dlq``)
            waits for each answer of Kafka, Temporal, a worker (queries) or a
            metrics endpoint before it says which did not answer and exits 3.
        temporal_ui_base_url: The Temporal web UI as operators reach it (e.g.
            ``https://temporal.example.com``), for the links ``relayflow status``
            prints; default the dev stack's (``temporal_ui_port`` on 127.0.0.1).
        console_host: Interface ``relayflow console`` listens on.
        console_port: TCP port of ``relayflow console`` (0: any free port).
        console_users_file: TOML file of the console's users: a table per user
            with ``password_hash`` (argon2) and ``roles`` (approver groups such
            as ``orders-approvers``, and ``operator``).
        console_users: The same users as JSON (``{"ann": {"password_hash":
            "...", "roles": ["orders-approvers"]}}``), instead of the file.
        console_secret_key: Signs the console's session cookies; unset: a
            random key per process (sessions end when it restarts). Never shown.
        console_session_seconds: How long a console sign-in lasts.
        console_secure_cookies: Send the session cookie over HTTPS only (set it
            when a TLS terminator stands in front of the console).
        console_trusted_user_header: A request header naming the signed-in user,
            set by an authenticating reverse proxy (e.g. ``X-Forwarded-User``);
            unset (default): users sign in with a password. Only for a console
            no one can reach but through that proxy.
        console_trusted_roles_header: With ``console_trusted_user_header``, a
            header listing the user's roles, comma-separated; unset: the roles
            of that user in the users file or setting.
        console_trusted_proxies: With ``console_trusted_user_header``, the
            addresses and CIDR networks (comma-separated) whose connections may
            set the identity headers; a request from elsewhere that sets one is
            refused (403). Default: loopback (``127.0.0.1,::1``).
        console_signin_attempts: Failed console sign-ins for one user name within
            ``console_signin_window_seconds`` that lock that name out (0: no limit).
        console_signin_address_attempts: The same for one client address (the
            connection's peer), whatever names it tries (0: no limit).
        console_signin_window_seconds: How far back failed sign-ins count.
        console_signin_lockout_seconds: How long a locked-out name or address is
            refused, its password not even checked.
    """

    # hide_input_in_errors: a validation error would otherwise quote every value, passwords too.
    model_config = SettingsConfigDict(env_prefix="RELAYFLOW_", extra="ignore",
                                      hide_input_in_errors=True)

    app: str = "relayflow.reference:APP"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_consumer_group: str = "relayflow-bridge"
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_dev_secure: bool = False
    kafka_dev_brokers: int = 1
    kafka_dev_node_ports: str | None = None
    schema_registry_url: str | None = None
    schema_registry_timeout_seconds: float = Field(default=5.0, gt=0)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    task_queue: str = "relayflow"

    data_dir: Path = Path(".relayflow")
    store_path_override: Path | None = Field(default=None, alias="RELAYFLOW_STORE_PATH")

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_advertised_port: int | None = None
    kafka_version: str = "4.1.1"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    max_payload_bytes: int = 512 * 1024
    max_header_count: int = Field(default=DEFAULT_MAX_HEADER_COUNT, ge=MIN_HEADER_COUNT)
    max_header_bytes: int = Field(default=DEFAULT_MAX_HEADER_BYTES, ge=MIN_HEADER_BYTES)
    bridge_batch_size: int = 2000
    bridge_signal_hold_seconds: float = 300.0
    bridge_shutdown_seconds: float = Field(default=15.0, gt=0)
    bridge_park_keys: bool = True
    approval_threshold_cents: int = 100_000
    approval_timeout_seconds: int = 24 * 3600
    escalation_timeout_seconds: int = 24 * 3600
    approver: str = "orders-approvers"
    escalation_approver: str = "orders-managers"
    bridge_concurrency: int = 64
    card_limit_cents: int = 500_000
    batch_history_event_limit: int = Field(default=2_000, ge=100)
    log_level: str = "INFO"
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "relayflow")
    payload_encryption_keys: SecretStr | None = None
    payload_encryption_keys_file: Path | None = None
    payload_encryption_key_id: str | None = None
    codec_server_token: SecretStr | None = None
    codec_server_origins: str | None = None
    secrets_dir: Path | None = None
    # Observability: tracing and log format (README, "Operating relayflow").
    tracing: bool = False
    log_format: Literal["json", "console"] | None = None

    # Operating: the HTTP endpoints (relayflow.observability.monitoring), Temporal SDK metrics.
    bridge_http_port: int = Field(default=9400, ge=-1, le=65535)
    worker_http_port: int = Field(default=9401, ge=-1, le=65535)
    http_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other hosts
    temporal_metrics_port: int = Field(default=9402, ge=-1, le=65535)
    metrics: bool = True
    ready_outage_grace_seconds: float = Field(default=30.0, ge=0)

    # Operator commands (relayflow.operate).
    operator_timeout_seconds: float = Field(default=10.0, gt=0)
    temporal_ui_base_url: str | None = None

    # The web console (relayflow/console).
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8400, ge=0, le=65535)
    console_users_file: Path | None = None
    console_users: str | None = None
    console_secret_key: SecretStr | None = None
    console_session_seconds: int = Field(default=8 * 3600, gt=0)
    console_secure_cookies: bool = False
    console_trusted_user_header: str | None = None
    console_trusted_roles_header: str | None = None
    console_trusted_proxies: str = "127.0.0.1,::1"
    # Failed sign-ins (relayflow/console/throttle.py).
    console_signin_attempts: int = Field(default=5, ge=0)
    console_signin_address_attempts: int = Field(default=20, ge=0)
    console_signin_window_seconds: float = Field(default=300.0, gt=0)
    console_signin_lockout_seconds: float = Field(default=300.0, gt=0)

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then variables, then the files of ``RELAYFLOW_SECRETS_DIR`` when set.

        Raises:
            SettingError: ``RELAYFLOW_SECRETS_DIR`` is set but is no folder.
        """
        folder = os.environ.get(_SECRETS_DIR)
        if not folder:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        if not Path(folder).is_dir():
            raise SettingError(f"{_SECRETS_DIR}: {folder} is not a folder")
        return init_settings, env_settings, dotenv_settings, _SecretFiles(settings_cls, folder)

    @field_validator("temporal_metrics_port")
    @classmethod
    def _fixed_port(cls, value: int) -> int:
        if value == 0:
            raise ValueError("the Temporal SDK does not tell which port it picked: "
                             "give a port, or -1 for none")
        return value

    @field_validator("kafka_dev_brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in {1, 3}:
            raise ValueError(f"{value} brokers: the dev stack runs 1 or 3")
        return value

    @field_validator("kafka_dev_node_ports")
    @classmethod
    def _port_pairs(cls, value: str | None) -> str | None:
        if value is not None:
            for pair in value.split(","):
                port, _, controller = pair.strip().partition("/")
                if not (port.isdigit() and controller.isdigit()):
                    raise ValueError(f"{pair.strip()!r} is not port/controller_port "
                                     "(e.g. 9094/9095,9096/9097)")
        return value

    @field_validator("console_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def console_trusted_networks(self) -> tuple[Network, ...]:
        """The networks of ``console_trusted_proxies``."""
        return parse_networks(self.console_trusted_proxies)

    @field_validator(*_PEM_FILES)
    @classmethod
    def _readable_pem(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        try:
            head = path.read_bytes()[:1 << 16]
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
        if b"-----BEGIN " not in head:
            raise ValueError(f"{path} is not a PEM file (no -----BEGIN line)")
        return path

    @model_validator(mode="after")
    def _kafka_security_combines(self) -> Self:
        problem = self._sasl_problem() or self._tls_problem() or self._nodes_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _sasl_problem(self) -> str | None:
        named = f"RELAYFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        sasl = {"kafka_sasl_mechanism": self.kafka_sasl_mechanism,
                "kafka_sasl_username": self.kafka_sasl_username,
                "kafka_sasl_password": self.kafka_sasl_password}
        for field, value in sasl.items():
            if self.kafka_security_protocol in _SASL and (
                    not value or (isinstance(value, SecretStr) and not value.get_secret_value())):
                return f"RELAYFLOW_{field.upper()} is required with {named}"
            if self.kafka_security_protocol not in _SASL and value is not None:
                return (f"RELAYFLOW_{field.upper()} is set, but {named} uses no SASL "
                        "(SASL_PLAINTEXT or SASL_SSL do)")
        return None

    def _nodes_problem(self) -> str | None:
        given = self.kafka_dev_node_ports
        if given is not None and len(given.split(",")) < self.kafka_dev_brokers - 1:
            return (f"RELAYFLOW_KAFKA_DEV_NODE_PORTS has {len(given.split(','))} port pairs, but "
                    f"RELAYFLOW_KAFKA_DEV_BROKERS={self.kafka_dev_brokers} needs "
                    f"{self.kafka_dev_brokers - 1} (the ports of brokers 2 and up)")
        return None

    @property
    def kafka_dev_ports(self) -> list[tuple[int, int]]:
        """(client port, controller port) of each dev broker, the first's first."""
        ports = [(self.kafka_port, self.kafka_controller_port)]
        if self.kafka_dev_node_ports is not None:
            pairs = (pair.strip().partition("/") for pair in self.kafka_dev_node_ports.split(","))
            return (ports + [(int(port), int(controller)) for port, _, controller in pairs]
                    )[:self.kafka_dev_brokers]
        return ports + [(self.kafka_port + 2 * n, self.kafka_controller_port + 2 * n)
                        for n in range(1, self.kafka_dev_brokers)]

    def _tls_problem(self) -> str | None:
        named = f"RELAYFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        if self.kafka_security_protocol not in _TLS:
            for field in (*_PEM_FILES, "kafka_ssl_key_password"):
                if getattr(self, field) is not None:
                    return (f"RELAYFLOW_{field.upper()} is set, but {named} uses no TLS "
                            "(SSL or SASL_SSL do)")
        if self.kafka_ssl_key_file is not None and self.kafka_ssl_cert_file is None:
            return ("RELAYFLOW_KAFKA_SSL_KEY_FILE is set without RELAYFLOW_KAFKA_SSL_CERT_FILE "
                    "(the certificate it belongs to)")
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_cert_file is None:
            return ("RELAYFLOW_KAFKA_SSL_KEY_PASSWORD is set without a client key "
                    "(RELAYFLOW_KAFKA_SSL_CERT_FILE / RELAYFLOW_KAFKA_SSL_KEY_FILE)")
        return None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Fields for ``repr`` and ``str``: ``SecretStr`` ones masked, and the registry's password.

        The schema registry URL may carry basic-auth credentials (``user:secret@``).
        """
        for name, value in super().__repr_args__():
            yield name, (redacted_url(value) if name == "schema_registry_url" and value
                         else value)

    @cached_property
    def store_path(self) -> Path:
        """SQLite file of the reference store."""
        return self.store_path_override or self.data_dir / "store.db"

    def as_env(self) -> dict[str, str]:
        """The ``RELAYFLOW_*`` variables that give a child process exactly these settings."""
        env = {f"RELAYFLOW_{name.upper()}": _env_value(value)
               for name, value in self.model_dump(exclude={"store_path_override"}).items()
               if value is not None}
        env["RELAYFLOW_STORE_PATH"] = str(self.store_path)
        return env

    def schema_registry(self) -> HttpSchemaRegistry | None:
        """A client of the configured schema registry, or None when none is set."""
        if not self.schema_registry_url:
            return None
        return HttpSchemaRegistry(self.schema_registry_url,
                                  timeout=self.schema_registry_timeout_seconds)

    def payload_codec(self) -> EncryptionCodec | None:
        """The payload encryption codec of the configured keys; None when none are.

        Raises:
            relayflow.temporal.payload_codec.PayloadKeyError: The keys are unusable; one
                line naming the setting, never a key.
        """
        keys_text = self.payload_encryption_keys
        if keys_text is None and self.payload_encryption_keys_file is None:
            if self.payload_encryption_key_id is not None:
                from relayflow.temporal.payload_codec import PayloadKeyError  # noqa: PLC0415

                raise PayloadKeyError("RELAYFLOW_PAYLOAD_ENCRYPTION_KEY_ID is set but no keys "
                                      "are (RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS or _KEYS_FILE)")
            return None
        # cryptography is imported only by processes that encrypt.
        from relayflow.temporal.payload_codec import EncryptionCodec, read_keys  # noqa: PLC0415

        keys = read_keys(None if keys_text is None else keys_text.get_secret_value(),
                         self.payload_encryption_keys_file)
        return EncryptionCodec(keys, self.payload_encryption_key_id)

    @property
    def codec_server_allowed_origins(self) -> frozenset[str]:
        """Browser origins the codec server answers (CORS)."""
        if self.codec_server_origins is not None:
            return frozenset(o.strip().rstrip("/") for o in self.codec_server_origins.split(",")
                             if o.strip())
        return frozenset(f"http://{host}:{self.temporal_ui_port}"
                         for host in ("localhost", "127.0.0.1"))

    @property
    def temporal_uses_tls(self) -> bool:
        """True when the Temporal client connects over TLS (see ``temporal_tls``)."""
        return self.temporal_tls or any(value is not None for value in (
            self.temporal_tls_ca_file, self.temporal_tls_cert_file, self.temporal_tls_key_file,
            self.temporal_tls_server_name, self.temporal_api_key))

    @property
    def temporal_ui_url(self) -> str:
        """URL of the Temporal web UI: ``temporal_ui_base_url``, else the local dev stack's."""
        if self.temporal_ui_base_url:
            return self.temporal_ui_base_url.rstrip("/")
        return f"http://127.0.0.1:{self.temporal_ui_port}"


def _env_value(value: object) -> str:
    # A child process needs the secret itself, not its mask.
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def get_settings() -> Settings:
    """Read settings from the environment (a fresh read each call)."""
    return Settings()



def load_settings(**update: object) -> Settings:
    """Read settings from the environment, then apply ``update``.

    Raises:
        SettingError: Some setting is bad; one line per problem, naming its variable.
    """
    try:
        return Settings(**update)  # type: ignore[arg-type]  # validated like the environment
    except ValidationError as error:
        raise SettingError("\n".join(setting_errors(error))) from None


def setting_errors(error: ValidationError) -> list[str]:
    """One line per bad setting, each starting with the variable it came from.

    Args:
        error: What ``Settings()`` raised.

    Returns:
        Lines such as ``RELAYFLOW_KAFKA_SSL_CA_FILE: cannot read /x: No such file or directory``.
    """
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            name = str(problem["loc"][0])
            name = name if name.startswith("RELAYFLOW_") else f"RELAYFLOW_{name.upper()}"
            message = f"{name}: {message}"
        lines.append(message)
    return lines
