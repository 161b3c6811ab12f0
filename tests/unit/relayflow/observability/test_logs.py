"""Log formats: JSON for machines, console lines for people, chosen by whether a terminal reads."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from structlog.contextvars import bound_contextvars

from bridge.logcontext import RECORD_LOG_CONTEXT, RecordLogContext
from relayflow.config.settings import Settings
from relayflow.observability.logs import LogFormat, configure_logging, default_log_format, formatter

RECORD: RecordLogContext = {"topic": "orders.events", "partition": 2, "offset": 41, "key": "ORD-1",
          "event_id": "e-1", "workflow_id": "order-ORD-1", "trace_id": "ab" * 16}


Captured = tuple[logging.Logger, io.StringIO, "logging.StreamHandler[io.StringIO]"]


@contextlib.contextmanager
def handling(fields: RecordLogContext) -> Iterator[None]:
    """As while the bridge handles a record (``bridge.observing`` sets the same variable)."""
    token = RECORD_LOG_CONTEXT.set(fields)
    try:
        yield
    finally:
        RECORD_LOG_CONTEXT.reset(token)


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_a_terminal_gets_console_lines_anything_else_json() -> None:
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "w") as tty, os.fdopen(controller, "rb"):
        assert default_log_format(tty) == "console"
    assert default_log_format(io.StringIO()) == "json"
    closed = io.StringIO()
    closed.close()
    assert default_log_format(closed) == "json"


def test_json_lines_carry_the_bound_record_fields_and_the_message(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(formatter("json"))
    with handling(RECORD):
        logger.warning("dead-lettered %s: %s", "orders.events[2]@41", "unknown-schema")
    logger.info("outside any record")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["event"] == "dead-lettered orders.events[2]@41: unknown-schema"
    assert inside["level"] == "warning"
    assert inside["logger"] == "tests.logs"
    assert inside.items() >= RECORD.items()
    assert "timestamp" in inside
    assert not RECORD.keys() & outside.keys()


def test_a_lines_own_fields_and_structlog_context_are_kept_beside_the_record(
        captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(formatter("json"))
    with handling(RECORD), bound_contextvars(request="r-1", topic="bound"):
        logger.info("hello", extra={"offset": 7})
    line = json.loads(stream.getvalue())
    assert line["offset"] == 7  # the line's own field wins over the record's
    assert line["topic"] == RECORD["topic"]
    assert line["request"] == "r-1"


def test_unknown_record_fields_stay_in_json_as_null(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(formatter("json"))
    with handling({**RECORD, "key": None, "workflow_id": None}):
        logger.warning("dead-lettered")
    line = json.loads(stream.getvalue())
    assert line["key"] is None
    assert line["workflow_id"] is None


def test_json_lines_take_the_trace_id_of_the_current_span(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(formatter("json"))
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("activity") as span:
        logger.info("publishing")
    line = json.loads(stream.getvalue())
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert line["span_id"] == f"{span.get_span_context().span_id:016x}"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_exceptions_are_plain_tracebacks_without_local_variables(
        captured: Captured, log_format: LogFormat) -> None:
    logger, stream, handler = captured
    handler.setFormatter(formatter(log_format))

    def fail(password: str) -> None:
        raise ValueError(f"boom after {len(password)} characters")

    secret = "s3cret-" + str(len(stream.getvalue()))  # its value is in no source line
    try:
        fail(secret)
    except ValueError:
        logger.exception("unexpected error")
    text = stream.getvalue()
    rendered = json.loads(text)["exception"] if log_format == "json" else text
    assert f"ValueError: boom after {len(secret)} characters" in rendered
    assert secret not in text


def test_console_lines_are_readable_text_with_the_fields(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(formatter("console"))
    with handling({**RECORD, "workflow_id": None}):
        logger.warning("dead-lettered orders.events[2]@41")
    [line] = stream.getvalue().splitlines()
    assert "dead-lettered orders.events[2]@41" in line
    assert "topic=orders.events" in line
    assert "offset=41" in line
    assert "workflow_id" not in line  # unknown yet: left out, not "None"
    assert "\x1b[" not in line  # no colours off a terminal
    assert not line.startswith("{")


def test_configure_logging_follows_the_setting_and_defaults_by_terminal() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        stream = io.StringIO()
        assert configure_logging(Settings(log_level="DEBUG"), stream=stream) == "json"
        assert root.level == logging.DEBUG
        assert configure_logging(Settings(log_format="console"), stream=stream) == "console"
        logging.getLogger("tests.logs").info("hello")
        [line] = stream.getvalue().splitlines()
        assert "hello" in line
        assert not line.startswith("{")
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def test_a_bad_log_format_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from relayflow.config.settings import SettingError, load_settings  # noqa: PLC0415

    monkeypatch.setenv("RELAYFLOW_LOG_FORMAT", "xml")
    with pytest.raises(SettingError, match=r"^RELAYFLOW_LOG_FORMAT: "):
        load_settings()
