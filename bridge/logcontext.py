"""The log context of the record being handled: one context variable, set once per record.

While the bridge handles a record, every log line (the bridge's, or a library's
it calls) carries the record's ``topic``, ``partition``, ``offset``, ``key``,
``event_id``, ``workflow_id`` and ``trace_id``. They are held as one mapping in
one context variable (``RECORD_LOG_CONTEXT``), not as seven structlog context
variables: setting seven costs each record 40-80 µs in the running bridge
(every set copies a node of the context), setting one a fraction of that
(BENCHMARKS.md). ``merge_record_context``, a structlog processor in the
process's log formatter (``relayflow.observability.logs``), adds them to each
line exactly as ``structlog.contextvars.merge_contextvars`` added the seven:
a field the line already has is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

from structlog.typing import EventDict, WrappedLogger

__all__ = ["RECORD_LOG_CONTEXT", "RecordLogContext", "merge_record_context", "record_log_context"]

RecordLogContext = Mapping[str, str | int | None]
"""A record's log fields, by name; a field not known (yet) is None."""

RECORD_LOG_CONTEXT: ContextVar[RecordLogContext | None] = ContextVar(
    "relayflow_record_log_context", default=None)
"""The log fields of the record being handled; None outside any record.

Set to a new mapping, never changed in place: a task started while a record
is handled keeps the fields it started with, as with any context variable.
"""


def record_log_context() -> RecordLogContext:
    """The log fields of the record being handled (empty outside any record)."""
    return RECORD_LOG_CONTEXT.get() or {}


def merge_record_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the fields of the record being handled to a log line, unless it has them."""
    fields = RECORD_LOG_CONTEXT.get()
    if fields is not None:
        for name, value in fields.items():
            event.setdefault(name, value)
    return event
