"""A producer of the counters application's requests, as the tests and the docs show it."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import TypeVar

from relayflow.kafka.reads import StoredRecord
from relayflow.testing import AppKafka
from schemas import Event
from schemas.framing import to_record
from schemas.headers import CAUSATION_ID, REPLY_TO
from schemas.topics import DLQ_SUFFIX
from tests.helpers.counters.app import REQUESTS
from tests.helpers.counters.events import AddToCounter, CounterAdded, CounterOpened, OpenAndAdd

__all__ = ["add", "ask", "new_counter", "now", "opened", "replies_to", "request"]

T = TypeVar("T", bound=Event)


def now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def new_counter() -> str:
    """A fresh counter id."""
    return f"C-{uuid.uuid4().hex[:8]}"


def add(counter_id: str, amount: int, *, hold_seconds: int = 0) -> AddToCounter:
    """A request to add ``amount`` (its handler first waits ``hold_seconds``)."""
    return AddToCounter(event_id=uuid.uuid4(), occurred_at=now(), counter_id=counter_id,
                        amount=amount, hold_seconds=hold_seconds)


async def opened(kafka: AppKafka, counter_id: str) -> None:
    """Open a counter and wait until its first request is answered (so it runs)."""
    await kafka.send(CounterOpened(event_id=uuid.uuid4(), occurred_at=now(),
                                   counter_id=counter_id))
    assert (await ask(kafka, add(counter_id, 1), CounterAdded)).total == 1


async def request(kafka: AppKafka, event: Event, *, correlation_id: str = "",
                  reply_to: str | None = None) -> None:
    """Send a request as a producer would, with a ``reply-to`` header when given."""
    record = to_record(event, kafka.codec, correlation_id=correlation_id or None)
    extra = [(REPLY_TO, reply_to.encode())] if reply_to is not None else []
    await kafka.send_bytes(REQUESTS, record.value, key=event.key,
                           headers=[*record.headers, *extra])


def replies_to(kafka: AppKafka, request_id: uuid.UUID) -> list[StoredRecord]:
    """Every reply that arrived for a request so far (by its ``causation-id``)."""
    return [r for r in kafka.arrived if r.header(CAUSATION_ID) == str(request_id)
            and not r.topic.endswith(DLQ_SUFFIX)]


async def ask(kafka: AppKafka, event: AddToCounter | OpenAndAdd, reply_type: type[T],
              **options: str) -> T:
    """Send a request, as a producer waiting for its reply does; return the reply."""
    seen = len(replies_to(kafka, event.event_id))
    await request(kafka, event, **options)
    deadline = time.monotonic() + 30
    while not (found := replies_to(kafka, event.event_id)[seen:]):
        assert time.monotonic() < deadline, f"no reply to {event}"
        with contextlib.suppress(AssertionError):  # fetches what arrived meanwhile
            await kafka.wait_for(CounterOpened, key="", timeout=0.2)
    assert found[0].value is not None
    answer = kafka.codec.decode(found[0].value)
    assert isinstance(answer, reply_type), answer
    return answer
