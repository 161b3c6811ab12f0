"""The console on the real stack: served in this process beside the module's bridge and worker.

``console`` (module) runs ``relayflow.console.running_console`` on a free port
with the settings of ``relayflow_system`` (so it lists that module's sagas and
batches), a known session key and the users of ``rig.USERS``. ``browser``
(module) is one headless Chromium for a module's tests; ``screenshots``
says where their pictures go.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from relayflow.config.settings import Settings
from tests.integration.console.browser import Screenshots, chromium
from tests.integration.console.rig import Console, serving


@pytest.fixture(scope="module")
async def console(relayflow_system: Settings) -> AsyncIterator[Console]:
    async with serving(relayflow_system) as served:
        yield served


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as found:
        yield found


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    folders = [tmp_path_factory.getbasetemp() / "console-screenshots"]
    if os.environ.get("RELAYFLOW_SCREENSHOTS_DIR"):
        folders.append(Path(os.environ["RELAYFLOW_SCREENSHOTS_DIR"]))
    return Screenshots(tuple(folders))
