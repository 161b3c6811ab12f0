"""The reference store: idempotent by key, compensations safe to repeat, failure hooks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relayflow.reference.activities.store import (
    DEFAULT_STOCK,
    OutOfStock,
    PaymentDeclined,
    ShipmentRejected,
    Store,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.db", card_limit_cents=10_000)


def test_reserve_is_idempotent_and_release_gives_units_back_once(store: Store) -> None:
    assert store.reserve("k1", "o1", [("SKU-A", 3)]) == "k1"
    assert store.reserve("k1", "o1", [("SKU-A", 3)]) == "k1"
    assert store.available("SKU-A") == DEFAULT_STOCK - 3
    assert store.release("k1").undone
    assert not store.release("k1").undone
    assert store.available("SKU-A") == DEFAULT_STOCK


def test_out_of_stock_reserves_nothing(store: Store) -> None:
    with pytest.raises(OutOfStock):
        store.reserve("k1", "o1", [("SKU-A", 1), ("OOS-B", 1)])
    assert store.available("SKU-A") is None  # rolled back as a whole
    assert store.release("k1").state == "absent"


def test_charge_once_refund_once_and_card_limit(store: Store) -> None:
    assert store.charge("p1", "o1", 500, "EUR") == "p1"
    store.charge("p1", "o1", 500, "EUR")
    assert len(store.rows("payments")) == 1
    assert store.refund("p1").undone
    assert store.refund("p1").state == "refunded"
    assert not store.refund("never").undone
    with pytest.raises(PaymentDeclined):
        store.charge("p2", "o2", 10_001, "EUR")
    assert store.rows("payments", "o2") == []


def test_shipments_and_no_carrier_hook(store: Store) -> None:
    store.create_shipment("s1", "o1", "DE")
    store.create_shipment("s1", "o1", "DE")
    assert [r["status"] for r in store.rows("shipments")] == ["created"]
    assert store.cancel_shipment("s1").undone
    assert not store.cancel_shipment("s1").undone
    with pytest.raises(ShipmentRejected):
        store.create_shipment("s2", "o2", "XX")


def test_concurrent_duplicate_calls_have_one_effect(store: Store) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.charge("p1", "o1", 100, "EUR"), range(32)))
        list(pool.map(lambda _: store.reserve("r1", "o1", [("SKU-C", 2)]), range(32)))
    assert len(store.rows("payments")) == 1
    assert store.available("SKU-C") == DEFAULT_STOCK - 2


def test_batch_items_and_failures_are_recorded_once(store: Store) -> None:
    assert store.process_item("batch-b1/i1", "b1", "i1") is True
    assert store.process_item("batch-b1/i1", "b1", "i1") is False  # a retry: no second effect
    assert store.process_item("batch-b1/i2", "b1", "i2") is True
    assert store.processed_items("b1") == 2
    assert store.record_failures("b1", 1, [("bad-3", "invalid"), ("bad-4", "invalid")]) == 2
    assert store.record_failures("b1", 1, [("bad-3", "invalid")]) == 0
    assert store.record_failures("b1", 0, [("bad-1", "timeout")]) == 1
    assert store.failed_items("b1") == [("bad-1", "timeout"), ("bad-3", "invalid"),
                                        ("bad-4", "invalid")]
    assert store.failed_items("other") == []
