"""Testing an application built on relayflow: in memory, or against a real Kafka and Temporal.

* ``relayflow.testing.plugin``: the pytest plugin (``relayflow_app``,
  ``relayflow_memory``, ``relayflow_time_skipping``, ``relayflow_stack``,
  ``relayflow_system``, ``relayflow_kafka``), registered as a ``pytest11``
  entry point, so installing relayflow is enough. Its docstring is the guide.
* ``relayflow.testing.memory``: ``AppMemory``, bridge and worker in memory on
  Temporal's time-skipping test server.
* ``relayflow.testing.stacks``: where the Kafka + Temporal come from.
* ``relayflow.testing.system``: bridge and worker running in the test process.
* ``relayflow.testing.kafka``: ``AppKafka``, sending events and waiting for outcomes.

The names below are imported on first use, so importing this package (which
pytest does at start-up) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relayflow.testing.kafka import AppKafka, AppTopics, Delivered, app_kafka
    from relayflow.testing.memory import AppMemory, MemoryTopics, app_memory, start_time_skipping
    from relayflow.testing.stacks import ensure_app_topics, session_stack
    from relayflow.testing.system import isolated, running_system

__all__ = ["AppKafka", "AppMemory", "AppTopics", "Delivered", "MemoryTopics", "app_kafka",
           "app_memory", "ensure_app_topics", "isolated", "running_system", "session_stack",
           "start_time_skipping"]

_HOME = {
    "AppKafka": "kafka", "AppTopics": "kafka", "Delivered": "kafka", "app_kafka": "kafka",
    "AppMemory": "memory", "MemoryTopics": "memory", "app_memory": "memory",
    "start_time_skipping": "memory",
    "ensure_app_topics": "stacks", "session_stack": "stacks",
    "isolated": "system", "running_system": "system",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
