"""A secured Kafka broker (``relayflow dev up --secure``'s) beside a stack: tests, benchmarks.

It runs on free ports in a folder of its own, so the session's plaintext
stack is untouched; Temporal stays the session's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack.secure import DevSecrets
from schemas.topics import Topic

__all__ = ["SecuredKafka", "secured_kafka"]


@dataclass(frozen=True)
class SecuredKafka:
    """A running secured broker.

    Attributes:
        settings: The session stack's settings pointing at this broker
            (plaintext: connect with ``as_principal``).
        secrets: Its CA, certificates and SCRAM passwords.
    """

    settings: Settings
    secrets: DevSecrets

    def as_principal(self, principal: str, **update: Any) -> Settings:
        """Settings that connect as ``principal`` (``tools``, ``bridge``, ...), plus ``update``."""
        return self.secrets.client_settings(self.settings, principal).model_copy(update=update)


@contextlib.contextmanager
def secured_kafka(stack: Settings, folder: Path,
                  topics: tuple[Topic, ...]) -> Iterator[SecuredKafka]:
    """Start a secured broker in ``folder`` with ``topics`` and the principals' ACLs; stop it after.

    Args:
        stack: The session's stack (its Temporal and store are kept).
        folder: The broker's data folder.
        topics: The application's topics (ACLs are granted on them).
    """
    port = devstack.free_port()
    settings = stack.model_copy(update={
        "data_dir": folder, "kafka_port": port, "kafka_controller_port": devstack.free_port(),
        "kafka_advertised_port": None, "kafka_bootstrap_servers": f"127.0.0.1:{port}",
        "kafka_dev_secure": True, "kafka_consumer_group": "relayflow-bridge"})
    try:
        devstack.start_kafka(settings)
        devstack.prepare_kafka(settings, topics)
        yield SecuredKafka(settings, devstack.dev_secrets(settings))
    finally:
        devstack.stop_kafka(settings)
