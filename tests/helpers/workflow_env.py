"""Temporal's workflow test environment, as ``--workflow-environment`` chooses it.

The ``workflow_env`` fixture (``tests/conftest.py``) and tests that need an
environment of their own (e.g. with a custom data converter's worker) start
it here.
"""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relayflow.testing.memory import find_test_server

__all__ = ["start_time_skipping_environment", "start_workflow_environment"]


async def start_time_skipping_environment() -> WorkflowEnvironment:
    """Temporal's time-skipping test server from the venv, with the pydantic data converter.

    Raises:
        FileNotFoundError: The ``temporal-test-server`` binary is not installed.
    """
    path = find_test_server()
    if path is None:
        raise FileNotFoundError("temporal-test-server not found: run `make install`")
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=path
    )


async def start_workflow_environment(config: pytest.Config) -> WorkflowEnvironment:
    """The environment ``--workflow-environment`` names (time-skipping by default)."""
    target = config.getoption("--workflow-environment")
    if target == "time-skipping":
        try:
            return await start_time_skipping_environment()
        except FileNotFoundError as error:
            pytest.fail(str(error))
    client = await Client.connect(target, data_converter=pydantic_data_converter)
    return WorkflowEnvironment.from_client(client)
