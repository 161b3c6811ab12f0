"""Runtime settings, read from ``RELAYFLOW_*`` environment variables.

Every mode (local dev stack, docker compose, an existing cluster) uses the same
names, so pointing relayflow at another Kafka or Temporal is only a matter of
exporting different values.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.decoding import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT
from relayflow.schema_registry import HttpSchemaRegistry
from schemas import EVENT_TYPES
from schemas.codec import AvroCodec

__all__ = ["MIN_HEADER_BYTES", "MIN_HEADER_COUNT", "Settings", "get_settings"]

MIN_HEADER_COUNT = 9
"""Lowest ``max_header_count``: the contract's six headers plus the three of a DLQ replay."""
MIN_HEADER_BYTES = 2048
"""Lowest ``max_header_bytes``: room for those nine at their longest (ids of 200 characters)."""


class Settings(BaseSettings):
    """All relayflow configuration.

    Attributes:
        app: The application the bridge and the worker run, as
            ``module:attribute`` naming an ``relayflow.application.Application``
            (default: relayflow's own orders, approvals and batches).
        kafka_bootstrap_servers: Comma-separated ``host:port`` list of Kafka brokers.
        kafka_consumer_group: Consumer group id of the bridge.
        schema_registry_url: A Confluent-compatible schema registry
            (``http(s)://[user:secret@]host:port``). When set, outcomes are
            framed in the Confluent wire format with ids from it (subject: the
            record's full name), and Confluent-framed input records are decoded
            with the schema it holds for their id. Single-object encoded
            records are accepted either way.
        schema_registry_timeout_seconds: Timeout of each registry request.
        temporal_address: ``host:port`` of the Temporal frontend.
        temporal_namespace: Temporal namespace for every workflow.
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
    """

    model_config = SettingsConfigDict(env_prefix="RELAYFLOW_", extra="ignore")

    app: str = "relayflow.reference:APP"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_consumer_group: str = "relayflow-bridge"
    schema_registry_url: str | None = None
    schema_registry_timeout_seconds: float = Field(default=5.0, gt=0)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
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

    @cached_property
    def store_path(self) -> Path:
        """SQLite file of the reference store."""
        return self.store_path_override or self.data_dir / "store.db"

    def as_env(self) -> dict[str, str]:
        """The ``RELAYFLOW_*`` variables that give a child process exactly these settings."""
        env = {f"RELAYFLOW_{name.upper()}": str(value)
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

    def codec(self) -> AvroCodec:
        """The Avro codec of relayflow's own event types, with the schema registry if set."""
        return AvroCodec(EVENT_TYPES.values(), registry=self.schema_registry())

    @property
    def temporal_ui_url(self) -> str:
        """URL of the Temporal web UI of the local dev stack."""
        return f"http://127.0.0.1:{self.temporal_ui_port}"


def get_settings() -> Settings:
    """Read settings from the environment (a fresh read each call)."""
    return Settings()
