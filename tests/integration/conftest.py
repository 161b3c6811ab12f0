"""Fixtures shared by the integration tests: relayflow itself running on the real stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.secured_kafka import SecuredKafka, secured_kafka
from relayflow.config.settings import Settings
from relayflow.reference.app import APP


@pytest.fixture(scope="module")
def system(relayflow_system: Settings) -> Settings:
    """The plugin's ``relayflow_system``: bridge and worker of ``relayflow_app`` in this process."""
    return relayflow_system


@pytest.fixture(scope="session")
def secured(relayflow_stack: Settings,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    """A secured broker beside the stack (``relayflow dev up --secure``'s), one per session."""
    with secured_kafka(relayflow_stack, tmp_path_factory.mktemp("secured-kafka"),
                       APP.all_topics()) as kafka:
        yield kafka
