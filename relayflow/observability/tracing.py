"""OpenTelemetry tracing: off unless ``RELAYFLOW_TRACING`` is on, then configured by ``OTEL_*``.

Off (the default) nothing of the OpenTelemetry SDK is built: no tracer
provider, no Temporal interceptor, no consume spans; what remains is
``opentelemetry-api``'s no-op. On, one SDK tracer provider per process is
built from the standard variables and installed as the global one (so an
application's own spans join the same traces):

* ``OTEL_TRACES_EXPORTER``: comma-separated span exporters, default ``otlp``
  (also ``otlp_proto_grpc``, ``otlp_proto_http``, ``console``, ``none``);
  ``otlp`` speaks ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` /
  ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc``, the default, or ``http/protobuf``).
* The exporters read ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``..._HEADERS``,
  ``..._TIMEOUT``, ``..._CERTIFICATE`` and their ``_TRACES_`` variants; the
  provider ``OTEL_SERVICE_NAME`` (default ``relayflow``),
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``; the batch
  processor ``OTEL_BSP_*``; ``OTEL_SDK_DISABLED=true`` turns it all off again.

Exporters are looked up the way the SDK's own auto-configuration does, by
their ``opentelemetry_traces_exporter`` entry points, so any installed
exporter package works. Spans are flushed when the process exits.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opentelemetry import trace

from relayflow.config.settings import SettingError, Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["DEFAULT_SERVICE_NAME", "span_exporters", "tracer_provider"]

DEFAULT_SERVICE_NAME = "relayflow"
"""``service.name`` of relayflow's spans when ``OTEL_SERVICE_NAME`` does not say."""

_EXPORTER_GROUP = "opentelemetry_traces_exporter"
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def span_exporters() -> list[SpanExporter]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``), built.

    Raises:
        SettingError: An exporter or OTLP protocol that is not installed or
            does not exist; the message names the variable.
    """
    variable = "OTEL_TRACES_EXPORTER"
    names = [n.strip() for n in os.environ.get(variable, "otlp").split(",") if n.strip()]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "none":
            continue
        found = name
        if name == "otlp":
            protocol_variable = next(
                (v for v in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
                 if os.environ.get(v, "").strip()), "OTEL_EXPORTER_OTLP_PROTOCOL")
            protocol = os.environ.get(protocol_variable, "").strip() or "grpc"
            if protocol not in _OTLP_BY_PROTOCOL:
                raise SettingError(f"{protocol_variable}: {protocol!r} is not one of "
                                   f"{', '.join(_OTLP_BY_PROTOCOL)}")
            found = _OTLP_BY_PROTOCOL[protocol]
        points = entry_points(group=_EXPORTER_GROUP, name=found)
        if not points:
            known = sorted({p.name for p in entry_points(group=_EXPORTER_GROUP)} | {"none"})
            raise SettingError(f"{variable}: no span exporter {name!r} is installed "
                               f"(known: {', '.join(known)})")
        exporters.append(next(iter(points)).load()())
    return exporters


def tracer_provider(settings: Settings) -> trace.TracerProvider | None:
    """The process's tracer provider when ``settings.tracing`` is on, else None.

    Built once per process (bridge and worker of ``relayflow run`` share it)
    and installed as OpenTelemetry's global provider.

    Raises:
        SettingError: A bad ``OTEL_*`` exporter setting.
    """
    if not settings.tracing:
        return None
    return _process_provider()


@cache
def _process_provider() -> TracerProvider:
    # Imported here: with tracing off, the SDK is never loaded.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    exporters = span_exporters()  # a bad name raises before anything is installed
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # flushes at exit (shutdown_on_exit)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
