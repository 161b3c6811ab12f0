"""Log output: one JSON object a line for machines, readable lines for people.

relayflow's modules log through the standard library (``logging.getLogger``);
structlog's ``ProcessorFormatter`` renders every record, relayflow's and the
libraries', as JSON (``RELAYFLOW_LOG_FORMAT=json``, the default when stderr
is not a terminal) or as console lines (``console``, the default on a
terminal). Every line carries ``timestamp``, ``level``, ``logger`` and
``event`` (the message), plus:

* the record's fields while the bridge handles one: ``topic``,
  ``partition``, ``offset``, ``key``, ``event_id``, ``workflow_id`` and
  ``trace_id`` (one context variable, ``bridge.logcontext``, set by
  ``bridge.observing``); in JSON the ones not known (yet) are ``null``,
  on a console they are left out;
* any context bound with ``structlog.contextvars``;
* ``trace_id`` and ``span_id`` of the current OpenTelemetry span, when
  tracing is on and the line has none yet (activities, workflows' clients);
* ``exception``: the traceback, as plain text (never with local variables,
  which could hold secrets).

Filters on loggers (``relayflow.kafka.clients`` hides aiokafka's SASL
exchange) run before any formatter, so they apply to both formats.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any, Literal

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from bridge.logcontext import merge_record_context
from relayflow.config.settings import Settings

__all__ = ["LogFormat", "add_trace_context", "configure_logging", "default_log_format",
           "formatter"]

LogFormat = Literal["json", "console"]


def default_log_format(stream: IO[str]) -> LogFormat:
    """``console`` when ``stream`` is a terminal, else ``json`` (a collector reads it)."""
    try:
        return "console" if stream.isatty() else "json"
    except ValueError:  # closed
        return "json"


def add_trace_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the current OpenTelemetry span's trace and span ids, unless the line has a trace id."""
    if event.get("trace_id") is None:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            event["trace_id"] = trace.format_trace_id(span.trace_id)
            event["span_id"] = trace.format_span_id(span.span_id)
    return event


def _drop_empty(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # On a console, context bound as None (no key, not routed yet) is only clutter.
    return {name: value for name, value in event.items() if value is not None}


def formatter(log_format: LogFormat, *, colors: bool = False) -> logging.Formatter:
    """A stdlib formatter rendering every record in ``log_format``, with the bound context.

    Args:
        log_format: ``json`` or ``console``.
        colors: Colour console lines (only for a terminal).
    """
    chain: list[Processor] = [
        merge_record_context,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),  # e.g. Temporal's activity and workflow info
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    renderer: Processor
    if log_format == "json":
        # Record fields not known yet stay, as null: every line about a record has them all.
        chain.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        chain.append(_drop_empty)
        # plain_traceback: rich's tracebacks would print local variables (secrets).
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


def configure_logging(settings: Settings, *, stream: IO[str] | None = None,
                      filename: str | None = None) -> LogFormat:
    """Send every log record to ``stream`` (default stderr) or ``filename``, formatted.

    Replaces the root logger's handlers; the level is ``settings.log_level``.

    Args:
        settings: ``log_level`` and ``log_format`` (unset: ``default_log_format``).
        stream: Where to write (default stderr).
        filename: Append to this file instead.

    Returns:
        The format chosen.
    """
    handler: logging.Handler
    if filename is not None:
        handler = logging.FileHandler(filename, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    target: Any = handler.stream
    chosen: LogFormat = settings.log_format or default_log_format(target)
    handler.setFormatter(formatter(chosen, colors=chosen == "console" and target.isatty()))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    return chosen
