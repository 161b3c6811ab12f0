"""Fixtures of the fault tests: a rig (``tests.faults.rig``) per test, on the session's stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relayflow.config.settings import Settings
from tests.faults.rig import Rig, open_rig


@pytest.fixture
async def rig(stack: Settings, tmp_path: Path) -> AsyncIterator[Rig]:
    """A rig on the session's stack; its processes cleaned up."""
    async with open_rig(stack, tmp_path) as made:
        yield made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here is a fault test on the real stack."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)
