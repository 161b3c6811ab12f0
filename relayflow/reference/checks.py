"""The reference application's part of ``relayflow verify`` (its ``VerifyChecks`` extension).

Orders and batches end with ``OrderCompleted`` / ``OrderFailed`` /
``BatchCompleted``; approval events and batch progress on the same topics do
not end anything. Beyond the framework's rules, the store must agree with
each order's outcome:

* ``charge-not-settled``: every charge of a finished order is either
  fulfilled (``OrderCompleted`` and a shipment) or refunded; the store keeps
  one row per idempotency key, so "exactly once" is a row count.
* ``two-charges``: no order has more than one payment.
* ``shipment-without-charge``: no live shipment without a live charge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from relayflow.config.settings import Settings
from relayflow.operate.verify import Flow, Violation
from relayflow.reference.activities.store import Store, open_store
from relayflow.reference.events import BatchCompleted, OrderCompleted, OrderFailed
from relayflow.reference.workflows.order_saga import OrderSaga

__all__ = ["ReferenceBatchFailures", "ReferenceChecks"]


def _by_order(rows: Iterable[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    grouped: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        grouped[str(row["order_id"])].append(row)
    return grouped


class ReferenceChecks:
    """Terminal outcomes of orders and batches, and the store's rules.

    Args:
        store: The store to check (default: the one the settings name).
    """

    terminal_outcomes: frozenset[str] = frozenset(
        model.avro_name for model in (OrderCompleted, OrderFailed, BatchCompleted))
    """What ends an order or a batch."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store

    def check(self, settings: Settings, flows: Sequence[Flow]) -> list[Violation]:
        """The store's rules on every order saga in ``flows``.

        Args:
            settings: Name the store (``store_path``, ``card_limit_cents``).
            flows: The workflows in scope.
        """
        store = self._store or open_store(settings)
        payments, shipments = _by_order(store.rows("payments")), _by_order(store.rows("shipments"))
        saga = OrderSaga.__name__
        found: list[Violation] = []
        for flow in flows:
            if flow.workflow_type != saga:
                continue
            outcome = flow.settled
            for order_id in sorted(flow.keys):
                paid, shipped = payments.get(order_id, []), shipments.get(order_id, [])
                charged = [p for p in paid if p["status"] == "charged"]
                live = [s for s in shipped if s["status"] == "created"]
                if len(paid) > 1:
                    found.append(Violation("two-charges", order_id, f"{len(paid)} payments"))
                if live and not charged:
                    found.append(Violation("shipment-without-charge", order_id,
                                           f"{len(live)} shipment(s)"))
                if isinstance(outcome, OrderCompleted) and not (charged and live):
                    found.append(Violation("charge-not-settled", order_id,
                                           "completed without a live charge and shipment"))
                if isinstance(outcome, OrderFailed) and (charged or live):
                    found.append(Violation(
                        "charge-not-settled", order_id,
                        f"failed but {len(charged)} charge(s) and {len(live)} shipment(s) remain"))
        return found


class ReferenceBatchFailures:
    """The reference batches' failed items, from the store (``relayflow batch-failures``)."""

    def failed_items(self, settings: Settings, batch_id: str) -> list[tuple[str, str]]:
        """Every failed item of ``batch_id`` as (item id, reason), in chunk order."""
        return open_store(settings).failed_items(batch_id)
