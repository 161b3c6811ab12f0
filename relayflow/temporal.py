"""One way to connect to Temporal, shared by the bridge, the worker and the CLI."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from relayflow.settings import Settings

__all__ = ["connect"]


async def connect(settings: Settings) -> Client:
    """Connect a Temporal client that (de)serializes pydantic models.

    Args:
        settings: Supplies the frontend address and namespace.

    Returns:
        A connected client; reuse it, it multiplexes one gRPC channel.
    """
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
