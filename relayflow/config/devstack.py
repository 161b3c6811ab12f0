"""Settings of ``relayflow dev``: the local Kafka and Temporal, their ports, folders and shape."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from relayflow.config.base import EnvSettings

__all__ = ["DataSettings", "DevStackSettings"]


class DataSettings(EnvSettings):
    """Data: where relayflow keeps its local files.

    Attributes:
        data_dir: Folder of the local dev stack (and the default folder of an
            application's local files, such as the reference app's store).
    """

    data_dir: Path = Path(".relayflow")


class DevStackSettings(EnvSettings):
    """Dev stack: the local Kafka and Temporal of relayflow dev up, their shape and ports.

    Attributes:
        cache_dir: Where the dev stack caches the Kafka jars, by version, so
            later runs start offline, and records the stack ``dev up`` last
            started (``dev-stack.json``: ``dev status`` and ``down`` find it
            from any folder).
        kafka_version: Apache Kafka release the dev stack resolves from Maven Central.
        kafka_port: Client port of the local dev Kafka broker.
        kafka_controller_port: KRaft controller port of the local dev broker.
        kafka_advertised_port: The port the local dev broker tells clients to
            use, when a proxy stands in front of it (fault tests put Toxiproxy
            there); default ``kafka_port``.
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
        temporal_port: Frontend port of the local Temporal dev server.
        temporal_ui_port: Web UI port of the local Temporal dev server.
        temporal_dev_server: Which Temporal ``relayflow dev up`` starts on a
            new stack: ``dev`` (default: ``temporal server start-dev``, SQLite,
            one history shard, with its web UI) or ``server`` (the real
            server, ``go.temporal.io/server`` built once with Go, on a private
            PostgreSQL cluster, four history shards, no UI); same as
            ``--temporal``.
    """

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "relayflow")
    kafka_version: str = "4.1.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_advertised_port: int | None = None
    kafka_dev_secure: bool = False
    kafka_dev_brokers: int = 1
    kafka_dev_node_ports: str | None = None
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_dev_server: Literal["dev", "server"] = "dev"

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

    @model_validator(mode="after")
    def _enough_node_ports(self) -> Self:
        given = self.kafka_dev_node_ports
        if given is not None and len(given.split(",")) < self.kafka_dev_brokers - 1:
            raise ValueError(
                f"RELAYFLOW_KAFKA_DEV_NODE_PORTS has {len(given.split(','))} port pairs, but "
                f"RELAYFLOW_KAFKA_DEV_BROKERS={self.kafka_dev_brokers} needs "
                f"{self.kafka_dev_brokers - 1} (the ports of brokers 2 and up)")
        return self

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
