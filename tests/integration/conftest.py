"""Fixtures shared by the integration tests: relayflow itself running on the real stack."""

from __future__ import annotations

import pytest

from relayflow.config.settings import Settings


@pytest.fixture(scope="module")
def system(relayflow_system: Settings) -> Settings:
    """The plugin's ``relayflow_system``: bridge and worker of ``relayflow_app`` in this process."""
    return relayflow_system
