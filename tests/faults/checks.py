"""What the fault tests produce and the invariants they end with."""

from __future__ import annotations

from relayflow.operate.verify import VerifyReport
from relayflow.reference.events import OrderPlaced
from tests.faults.rig import Rig
from tests.helpers.support import order_placed

__all__ = ["assert_clean", "orders"]


def orders(rig: Rig, count: int) -> list[OrderPlaced]:
    """A mix: most complete, every 7th fails at shipment (compensating a charge)."""
    return [order_placed(rig.order_id(n), country="XX" if n % 7 == 3 else "DE")
            for n in range(count)]


def assert_clean(report: VerifyReport, count: int) -> None:
    """Each of ``orders(rig, count)`` settled once; exactly those sent to ``XX`` failed."""
    assert report.ok, report.summary()
    assert report.open == [], report.summary()
    assert report.workflows["OrderSaga"] == count, report.summary()
    assert report.settled["OrderCompleted"] + report.settled["OrderFailed"] == count
    assert report.settled["OrderFailed"] == len([n for n in range(count) if n % 7 == 3])
