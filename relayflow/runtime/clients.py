"""The one factory of clients: every Kafka and Temporal client relayflow runs is built here.

``kafka_clients`` gives the Kafka client factory (``relayflow.kafka.clients``:
bootstrap servers, TLS and SASL decided once); ``connect_temporal`` and
``wait_for_temporal`` give connected Temporal clients that share one data
converter. The bridge, the worker, the operator commands, the console, the
dev stack and the test tools all get their clients here, or are handed them by
a caller that did; nothing else constructs one.

This module stays light (no bridge, worker or web code), so an operator
command that only needs a client does not pay for the rest of the composition root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import KeepAliveConfig, RetryConfig, RPCError, RPCStatusCode

from bridge.retry import Backoff
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.observability.tracing import tracer_provider as configured_tracer_provider
from relayflow.temporal.claim_check import (
    BlobStore,
    ClaimCheckDriver,
    ExternalStorage,
    FileBlobStore,
)
from relayflow.temporal.payload_codec import payload_codec
from relayflow.temporal.s3_blobs import S3BlobStore
from relayflow.temporal.tls import refusal, temporal_credentials

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from temporalio.runtime import Runtime

__all__ = ["blob_store", "claim_check", "connect_temporal", "data_converter", "kafka_clients",
           "traced", "wait_for_temporal"]

log = logging.getLogger(__name__)

# Core treats max_retries=0 as "no limit"; one quick retry absorbs a single dropped
# call, anything longer surfaces to the caller's own backoff.
_ONE_QUICK_RETRY = RetryConfig(max_retries=1, initial_interval_millis=100,
                               max_elapsed_time_millis=1000)
_NOT_UP_YET = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


def kafka_clients(settings: Settings) -> KafkaClients:
    """The Kafka client factory for ``settings``: every producer, consumer, admin and broker.

    Loads the TLS files now, so unusable ones stop the caller before anything connects.

    Args:
        settings: Bootstrap servers, security protocol, TLS files and SASL credentials.

    Raises:
        KafkaSecurityError: A TLS file or SASL setting is unusable (names the setting).
    """
    return KafkaClients(settings)


def blob_store(settings: Settings) -> BlobStore | None:
    """The configured claim-check store (S3 before a folder); None when the claim check is off."""
    if settings.claim_check_s3_endpoint is not None:
        return S3BlobStore(
            settings.claim_check_s3_endpoint, settings.claim_check_s3_bucket,
            settings.claim_check_s3_access_key,
            settings.claim_check_s3_secret_key.get_secret_value(),
            region=settings.claim_check_s3_region, prefix=settings.claim_check_s3_prefix)
    if settings.claim_check_dir is not None:
        return FileBlobStore(settings.claim_check_dir)
    return None


def claim_check(settings: Settings) -> ClaimCheckDriver | None:
    """The claim-check driver over the configured blob store; None when the claim check is off."""
    store = blob_store(settings)
    return None if store is None else ClaimCheckDriver(store)


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic models as JSON; encrypted and claim-checked when those are configured.

    Large payloads go to the claim-check store when ``claim_check_dir`` is set
    (``relayflow.temporal.claim_check``).

    With encryption on, failure messages and stack traces move into the
    failure's encoded attributes, so the codec encrypts them too (they may
    quote order data).

    Raises:
        relayflow.temporal.payload_codec.PayloadKeyError: The configured keys are unusable.
    """
    converter = pydantic_data_converter
    driver = claim_check(settings)
    if driver is not None:
        converter = dataclasses.replace(converter, external_storage=ExternalStorage(
            drivers=[driver], payload_size_threshold=settings.claim_check_threshold_bytes))
    codec = payload_codec(settings)
    if codec is None:
        return converter
    return dataclasses.replace(
        converter, payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


def traced(settings: Settings, provider: TracerProvider | None) -> TracerProvider | None:
    """The provider given (tests), else the process's when ``settings.tracing`` is on.

    Args:
        settings: Says whether tracing is on, and where spans go.
        provider: A provider to use instead (tests).
    """
    return provider if provider is not None else configured_tracer_provider(settings)


async def connect_temporal(settings: Settings, *, retries: bool = True,
                           tracer_provider: TracerProvider | None = None,
                           runtime: Runtime | None = None) -> Client:
    """Connect a Temporal client that (de)serializes pydantic models, encrypted if configured.

    The bridge, the worker (through its client) and every CLI command get
    their client here, so all of them share one data converter.

    Args:
        settings: Supplies the frontend address and namespace, the payload keys,
            and TLS, client certificate and API key when set (``relayflow.temporal.tls``).
        retries: Let the SDK retry failed calls itself (logging each retry). The
            bridge turns this off: it retries with its own backoff, pausing
            consumption, and logs once per outage instead of once per call.
        tracer_provider: Trace with this provider instead of the one the
            settings give (``relayflow.observability.tracing``). With one, the client carries
            the SDK's ``TracingInterceptor``, and so does every worker built on
            it: client calls, workflows and activities make spans that continue
            the caller's trace.
        runtime: The Temporal runtime (``relayflow.observability.monitoring.temporal_runtime``,
            exporting the SDK's metrics); None for the SDK's default one.

    Returns:
        A connected client; reuse it, it multiplexes one gRPC channel.

    Raises:
        SettingError: A TLS or API key setting is unusable, or Temporal refused
            the connection for a reason waiting does not fix (credentials, CA,
            server name, TLS on one side only). One line naming the setting.
        RuntimeError: Temporal did not answer (not up yet, unreachable).
    """
    credentials = temporal_credentials(settings)
    provider = traced(settings, tracer_provider)
    interceptors = []
    if provider is not None:
        # Imported only when tracing: it loads the OpenTelemetry SDK.
        from temporalio.contrib.opentelemetry import TracingInterceptor  # noqa: PLC0415

        interceptors.append(TracingInterceptor(provider.get_tracer(TracingInterceptor.__module__)))
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
            retry_config=None if retries else _ONE_QUICK_RETRY,
            tls=credentials.tls,
            api_key=credentials.api_key,
            keep_alive_config=KeepAliveConfig(
                interval_millis=round(settings.temporal_keepalive_interval_seconds * 1000),
                timeout_millis=round(settings.temporal_keepalive_timeout_seconds * 1000)),
            interceptors=interceptors,
            runtime=runtime,
        )
    except RuntimeError as error:
        refused = refusal(settings, error)
        if refused is not None:
            raise refused from None
        raise


async def wait_for_temporal(settings: Settings, *, backoff: Backoff | None = None,
                            retries: bool = True,
                            tracer_provider: TracerProvider | None = None,
                            runtime: Runtime | None = None) -> Client:
    """Connect, waiting with backoff while Temporal is not up yet; check the namespace.

    Args:
        settings: As for ``connect_temporal``.
        backoff: Schedule of the attempts.
        retries: As for ``connect_temporal``.
        tracer_provider: As for ``connect_temporal``.
        runtime: As for ``connect_temporal``.

    Raises:
        SettingError: Bad TLS or API key settings, or Temporal refused them.
        RPCError: Temporal answers but refuses, e.g. the namespace does not
            exist: a configuration error, so nothing should start.
    """
    backoff = backoff or Backoff()
    failures = 0
    while True:
        try:
            client = await connect_temporal(settings, retries=retries,
                                            tracer_provider=tracer_provider, runtime=runtime)
            # Connecting does not check the namespace; an unknown one would block every record.
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace))
        except (RuntimeError, RPCError) as error:
            # The SDK raises RuntimeError when it cannot connect at all.
            if isinstance(error, RPCError) and error.status not in _NOT_UP_YET:
                refused = refusal(settings, error)
                if refused is not None:
                    raise refused from None
                raise
            failures += 1
            if failures == 1:
                log.warning("Temporal at %s unavailable (%s); retrying with backoff",
                            settings.temporal_address, error)
            await asyncio.sleep(backoff.delay(failures))
            continue
        if failures:
            log.warning("Temporal at %s available after %d attempts", settings.temporal_address,
                        failures + 1)
        return client
