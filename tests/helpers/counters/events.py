"""The counters test application's events: a request/response contract in miniature."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from schemas import Event, Key, Outcome

__all__ = ["EVENT_TYPES", "AddToCounter", "CounterAdded", "CounterClosed", "CounterOpened",
           "OpenAndAdd"]


class _KeyedByCounter:
    if TYPE_CHECKING:
        counter_id: str

    @property
    def key(self) -> str:
        """Kafka message key: the counter id."""
        return self.counter_id


class CounterOpened(_KeyedByCounter, Event):
    """Starts a counter's workflow."""

    avro_name: ClassVar[str] = "tests.counters.CounterOpened"
    counter_id: Key


class CounterClosed(_KeyedByCounter, Event):
    """Ends a counter's workflow (a signal)."""

    avro_name: ClassVar[str] = "tests.counters.CounterClosed"
    counter_id: Key


class AddToCounter(_KeyedByCounter, Event):
    """A request: add ``amount`` to a running counter; the handler first waits ``hold_seconds``."""

    avro_name: ClassVar[str] = "tests.counters.AddToCounter"
    counter_id: Key
    amount: int
    hold_seconds: int = Field(default=0, ge=0, le=60)


class OpenAndAdd(_KeyedByCounter, Event):
    """A request as ``AddToCounter``, starting the counter first if needed."""

    avro_name: ClassVar[str] = "tests.counters.OpenAndAdd"
    counter_id: Key
    amount: int
    hold_seconds: int = Field(default=0, ge=0, le=60)


class CounterAdded(_KeyedByCounter, Outcome):
    """The reply to an accepted request: the counter after it."""

    avro_name: ClassVar[str] = "tests.counters.CounterAdded"
    counter_id: Key
    amount: int
    total: int
    applied: int


EVENT_TYPES: tuple[type[Event], ...] = (CounterOpened, CounterClosed, AddToCounter, OpenAndAdd,
                                        CounterAdded)
