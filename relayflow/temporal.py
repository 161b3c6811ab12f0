"""One way to connect to Temporal, shared by the bridge, the worker and the CLI."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from relayflow.settings import Settings

__all__ = ["connect"]

# Core treats max_retries=0 as "no limit"; one quick retry absorbs a single dropped
# call, anything longer surfaces to the caller's own backoff.
_ONE_QUICK_RETRY = RetryConfig(max_retries=1, initial_interval_millis=100,
                               max_elapsed_time_millis=1000)


async def connect(settings: Settings, *, retries: bool = True) -> Client:
    """Connect a Temporal client that (de)serializes pydantic models.

    Args:
        settings: Supplies the frontend address and namespace.
        retries: Let the SDK retry failed calls itself (logging each retry). The
            bridge turns this off: it retries with its own backoff, pausing
            consumption, and logs once per outage instead of once per call.

    Returns:
        A connected client; reuse it, it multiplexes one gRPC channel.
    """
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        retry_config=None if retries else _ONE_QUICK_RETRY,
    )
