"""Fixtures shared by the integration tests: relayflow itself running on the real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relayflow.settings import Settings
from tests.integration.running import relayflow_running


@pytest.fixture(scope="module")
async def system(stack: Settings) -> AsyncIterator[Settings]:
    """Bridge and worker in this process (see ``relayflow_running``)."""
    async with relayflow_running(stack) as settings:
        yield settings
