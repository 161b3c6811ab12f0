"""relayflow's pytest plugin: a real Kafka + Temporal, your application running, its topics at hand.

Installed with relayflow (entry point ``pytest11``: ``relayflow``). Fixtures:

``relayflow_stack`` (session)
    Settings of a running Kafka + Temporal: ``RELAYFLOW_TEST_STACK=external``
    uses the ``RELAYFLOW_*`` addresses; testcontainers when a Docker engine
    answers; else relayflow's local dev stack in ``<rootdir>/.relayflow-test``
    on the ``RELAYFLOW_TEST_KAFKA_PORT`` / ``_KAFKA_CONTROLLER_PORT`` /
    ``_TEMPORAL_PORT`` / ``_TEMPORAL_UI_PORT`` ports (``RELAYFLOW_TEST_KEEP_STACK=1``
    leaves it running for the next session).
``relayflow_app`` (session)
    The application under test; relayflow's own (``relayflow.reference.APP``)
    unless you override it, in a conftest (scope ``session``) or a test module
    (scope ``module`` or ``session``)::

        @pytest.fixture(scope="session")
        def relayflow_app() -> Application:
            return APP
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
    topics, ``await wait_for_dead_letter(topic, key=...)``.

The async fixtures need pytest-asyncio and run in the session's event loop,
so the tests using them must too (``asyncio_default_test_loop_scope =
"session"`` in the pytest configuration, or
``@pytest.mark.asyncio(loop_scope="session")``).

This module imports only pytest when pytest starts; everything else is
imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from relayflow.application import Application
    from relayflow.config.settings import Settings
    from relayflow.testing.kafka import AppKafka

__all__ = ["relayflow_app", "relayflow_kafka", "relayflow_stack", "relayflow_system",
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


@pytest.fixture(scope="session")
def relayflow_app() -> Application:
    """The application under test: relayflow's own unless overridden."""
    from relayflow.reference.app import APP  # noqa: PLC0415

    return APP


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
