"""The console on the real stack: served in this process beside the module's bridge and worker.

``console`` (module) runs ``relayflow.console.running_console`` on a free port
with the settings of ``relayflow_system`` (so it lists that module's sagas and
batches), a known session key and the users of ``USERS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from relayflow.console import running_console
from relayflow.settings import Settings
from tests.integration.console.rig import SECRET_KEY, Console, directory


@pytest.fixture(scope="module")
async def console(relayflow_system: Settings) -> AsyncIterator[Console]:
    settings = relayflow_system.model_copy(update={
        "console_host": "127.0.0.1", "console_port": 0,
        "console_secret_key": SecretStr(SECRET_KEY)})
    async with running_console(settings, users=directory()) as url:
        yield Console(url, settings)
