"""The pydantic models mirror the .avsc files (the source of truth) one to one."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import fastavro
import pytest

from examples.carts.app import APP as CARTS
from examples.parcels.app import APP as PARCELS
from examples.tickets.app import APP as TICKETS
from relayflow.reference.app import APP as REFERENCE
from relayflow.reference.events import EVENT_TYPES, SCHEMA_FOLDER
from schemas import Event, Key, Outcome
from schemas.agreement import disagreements
from schemas.codec import load_schemas
from schemas.replies import RequestFailed
from tests.helpers.counters.app import APP as COUNTERS
from tests.helpers.support import samples
from tests.helpers.tallies.app import APP as TALLIES

SCHEMAS = load_schemas(SCHEMA_FOLDER)


def test_every_schema_has_a_model_and_every_model_a_schema() -> None:
    assert set(SCHEMAS) == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_documented_and_namespaced(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["namespace"].startswith("relayflow.")
    assert schema.get("doc")
    names = [f["name"] for f in schema["fields"]]
    assert names[:2] == ["event_id", "occurred_at"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_model_fields_match_schema_fields(name: str) -> None:
    # Names, order, types, defaults and namespace, as Application checks them at build.
    assert disagreements(EVENT_TYPES[name], SCHEMAS[name]) == []


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_model_round_trips_through_its_schema(event: Event) -> None:
    parsed = fastavro.parse_schema(SCHEMAS[event.avro_name])
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, event.model_dump(mode="python"))
    buffer.seek(0)
    assert type(event).model_validate(fastavro.schemaless_reader(buffer, parsed)) == event


KEYS = {
    "order_id": {"relayflow.orders.OrderPlaced", "relayflow.orders.OrderCancelled",
                 "relayflow.approvals.ApprovalDecided", "relayflow.orders.OrderCompleted",
                 "relayflow.orders.OrderFailed", "relayflow.orders.ApprovalRequested",
                 "relayflow.orders.ApprovalEscalated", "relayflow.orders.ApprovalTimedOut",
                 "relayflow.orders.ApprovalDecisionRefused"},
    "batch_id": {"relayflow.batches.BatchRequested", "relayflow.batches.BatchCancelled",
                 "relayflow.batches.BatchProgress", "relayflow.batches.BatchCompleted"},
    "request_key": {"relayflow.replies.RequestFailed"},
    "cart_id": {"carts.events.ItemAdded", "carts.events.ItemRemoved",
                "carts.events.CheckoutRequested", "carts.events.CartCheckedOut",
                "carts.events.CheckoutRejected", "carts.events.CartAbandoned"},
    "ticket_id": {"tickets.events.TicketOpened", "tickets.events.TicketAnswered",
                  "tickets.events.TicketResolved", "tickets.events.TicketExpired"},
    "parcel_id": {"parcels.ParcelShipped", "parcels.ParcelDelivered", "parcels.ParcelClosed"},
    "counter_id": {"tests.counters.CounterOpened", "tests.counters.CounterClosed",
                   "tests.counters.AddToCounter", "tests.counters.OpenAndAdd",
                   "tests.counters.CounterAdded"},
    "tally_id": {"tallies.events.TallyAdded", "tallies.events.TallyIdled"},
}
"""The Kafka contract's keys: which field each event type's records are keyed by."""
KEY_OF = {name: field for field, names in KEYS.items() for name in names}

APPS = (REFERENCE, CARTS, TICKETS, PARCELS, COUNTERS, TALLIES)
EVERY_MODEL: list[type[Event]] = sorted(
    {*(model for app in APPS for model in app.event_types), RequestFailed},
    key=lambda model: (model.avro_name, model.__module__))


def _key_of(model: type[Event]) -> str:
    """Which field ``model``'s key is: each field of a probe holds its own name."""
    names: dict[str, Any] = {name: name for name in model.model_fields}
    return model.model_construct(**names).key


@pytest.mark.parametrize("model", EVERY_MODEL, ids=lambda m: f"{m.__module__}.{m.__name__}")
def test_every_event_keeps_its_key(model: type[Event]) -> None:
    key = _key_of(model)
    assert key in model.model_fields
    assert key == KEY_OF.get(model.avro_name, key)  # a new event type: a key of its own


class _Cart(Event):
    key_field = "cart_id"  # a base: its subclasses declare the field


class _CartAdded(_Cart):
    avro_name: ClassVar[str] = "test.CartAdded"
    cart_id: Key
    units: int


def test_key_field_names_the_key_and_keeps_the_field_order() -> None:
    event = _CartAdded(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), cart_id="c-1",
                       units=2)
    assert event.key == "c-1"
    assert list(_CartAdded.model_fields) == ["event_id", "occurred_at", "cart_id", "units"]


def test_a_key_field_that_is_not_a_field_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r"_Typo\.key_field names 'cart_id', not one of its fields "
                                        r"\(event_id, occurred_at, correlation_id, "
                                        r"causation_id, cartid\)"):
        class _Typo(Outcome):
            avro_name: ClassVar[str] = "test.Typo"
            key_field = "cart_id"
            cartid: Key
    with pytest.raises(TypeError, match=r"_Inherited\.key_field names 'cart_id'"):
        class _Inherited(_Cart):  # the base's key_field, and no such field
            avro_name: ClassVar[str] = "test.Inherited"
            basket_id: Key


def test_a_key_field_declared_as_a_field_is_refused() -> None:
    with (pytest.raises(TypeError, match="key_field is a class variable, not a field"),
          pytest.warns(UserWarning, match="shadows an attribute")):  # pydantic's own, first
        class _AsField(Event):
            avro_name: ClassVar[str] = "test.AsField"
            key_field: str = "cart_id"  # type: ignore[misc]  # the mistake under test
            cart_id: Key


def test_a_key_that_is_not_text_is_its_text_and_a_computed_key_still_works() -> None:
    class _Numbered(Event):
        avro_name: ClassVar[str] = "test.Numbered"
        key_field = "number"
        number: int

    class _Composite(Event):
        avro_name: ClassVar[str] = "test.Composite"
        tenant: Key
        account: Key

        @property
        def key(self) -> str:
            return f"{self.tenant}/{self.account}"

    now = datetime.now(UTC)
    assert _Numbered(event_id=uuid.uuid4(), occurred_at=now, number=7).key == "7"
    assert _Composite(event_id=uuid.uuid4(), occurred_at=now, tenant="t",
                      account="a").key == "t/a"


def test_an_event_without_a_key_says_how_to_name_one() -> None:
    class _Keyless(Event):
        avro_name: ClassVar[str] = "test.Keyless"

    with pytest.raises(NotImplementedError, match="set key_field or override key"):
        _ = _Keyless(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC)).key
