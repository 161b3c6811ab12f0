"""Observability: JSON logs, Prometheus metrics and health endpoints, OpenTelemetry tracing."""
