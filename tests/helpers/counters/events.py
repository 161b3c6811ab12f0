"""The counters test application's events: a request/response contract in miniature."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from schemas import Event, Key, Outcome

__all__ = ["EVENT_TYPES", "AddToCounter", "CounterAdded", "CounterClosed", "CounterOpened",
           "OpenAndAdd"]


class CounterOpened(Event):
    """Starts a counter's workflow."""

    avro_name: ClassVar[str] = "tests.counters.CounterOpened"
    key_field = "counter_id"
    counter_id: Key


class CounterClosed(Event):
    """Ends a counter's workflow (a signal)."""

    avro_name: ClassVar[str] = "tests.counters.CounterClosed"
    key_field = "counter_id"
    counter_id: Key


class AddToCounter(Event):
    """A request: add ``amount`` to a running counter; the handler first waits ``hold_seconds``."""

    avro_name: ClassVar[str] = "tests.counters.AddToCounter"
    key_field = "counter_id"
    counter_id: Key
    amount: int
    hold_seconds: int = Field(default=0, ge=0, le=60)


class OpenAndAdd(Event):
    """A request as ``AddToCounter``, starting the counter first if needed."""

    avro_name: ClassVar[str] = "tests.counters.OpenAndAdd"
    key_field = "counter_id"
    counter_id: Key
    amount: int
    hold_seconds: int = Field(default=0, ge=0, le=60)


class CounterAdded(Outcome):
    """The reply to an accepted request: the counter after it."""

    avro_name: ClassVar[str] = "tests.counters.CounterAdded"
    key_field = "counter_id"
    counter_id: Key
    amount: int
    total: int
    applied: int


EVENT_TYPES: tuple[type[Event], ...] = (CounterOpened, CounterClosed, AddToCounter, OpenAndAdd,
                                        CounterAdded)
