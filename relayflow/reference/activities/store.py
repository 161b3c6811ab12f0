"""The reference system's store: inventory, payments and shipments in SQLite (WAL).

Every write is keyed by the calling activity's idempotency key, so running an
activity twice has one effect, and every compensation is a no-op when there
is nothing (left) to undo.

Deterministic failure hooks make each saga step fail on demand:

* a SKU starting with ``OOS-`` has no stock (``OutOfStock`` at reserve);
* a charge above ``card_limit_cents`` is declined (``PaymentDeclined``);
* a shipping country in ``NO_CARRIER_COUNTRIES`` has no carrier
  (``ShipmentRejected``).

Any other SKU gets ``DEFAULT_STOCK`` units the first time it is seen.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio import activity

from relayflow.reference.settings import ReferenceSettings

if TYPE_CHECKING:
    from relayflow.config import Settings

__all__ = [
    "DEFAULT_STOCK",
    "NO_CARRIER_COUNTRIES",
    "OUT_OF_STOCK_PREFIX",
    "VOID",
    "BusinessRuleViolation",
    "OutOfStock",
    "PaymentDeclined",
    "ShipmentRejected",
    "Store",
    "Undo",
    "open_store",
]

DEFAULT_STOCK = 1_000_000
OUT_OF_STOCK_PREFIX = "OOS-"
NO_CARRIER_COUNTRIES = frozenset({"XX", "AQ"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (
    sku TEXT PRIMARY KEY,
    available INTEGER NOT NULL CHECK (available >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    key TEXT PRIMARY KEY, order_id TEXT NOT NULL, status TEXT NOT NULL,
    lines TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS payments (
    key TEXT PRIMARY KEY, order_id TEXT NOT NULL, status TEXT NOT NULL,
    amount_cents INTEGER NOT NULL, currency TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_items (
    key TEXT PRIMARY KEY, batch_id TEXT NOT NULL, item_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_failures (
    batch_id TEXT NOT NULL, item_id TEXT NOT NULL, chunk INTEGER NOT NULL,
    reason TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (batch_id, item_id)
);
CREATE TABLE IF NOT EXISTS shipments (
    key TEXT PRIMARY KEY, order_id TEXT NOT NULL, status TEXT NOT NULL,
    country TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
"""


VOID = "void"
"""Status of a key compensated before its step took effect: a late step does nothing."""

# A void row per table: the key, its order, the status, placeholders for the step's data.
_VOID_ROWS = {
    "reservations": "(?, ?, 'void', '', ?, ?)",
    "payments": "(?, ?, 'void', 0, '', ?, ?)",
    "shipments": "(?, ?, 'void', '', ?, ?)",
}


def _void(db: sqlite3.Connection, table: str, key: str, order_id: str, *,
          exists: bool) -> Undo:
    """Void a key whose step has not taken effect (yet): nothing to undo, and never will be.

    A step can still be running when its compensation runs (the saga was
    cancelled mid-step, or gave up on an attempt that timed out while its worker
    lived on). Its own write, arriving later, finds the key taken and does nothing.
    """
    if not exists:
        now = time.time()
        db.execute(f"INSERT INTO {table} VALUES {_VOID_ROWS[table]}",  # noqa: S608 - ours
                   (key, order_id, now, now))
    return Undo(undone=False, state="absent")


class BusinessRuleViolation(Exception):
    """A step was refused for a business reason; retrying cannot help."""


class OutOfStock(BusinessRuleViolation):
    """Not enough units of a SKU."""


class PaymentDeclined(BusinessRuleViolation):
    """The charge was declined."""


class ShipmentRejected(BusinessRuleViolation):
    """No carrier ships to the destination."""


@dataclass(frozen=True, slots=True)
class Undo:
    """What a compensation found and did.

    Attributes:
        undone: True when this call reversed an effect.
        state: The record's status afterwards (``released``, ``refunded``,
            ``cancelled``) or ``absent`` when the step never took effect.
    """

    undone: bool
    state: str


class Store:
    """SQLite-backed store, safe to share between activity threads.

    Args:
        path: Database file; created with its tables on first use.
        card_limit_cents: Charges above this are declined.
    """

    def __init__(self, path: Path, *, card_limit_cents: int) -> None:
        self.path = path
        self.card_limit_cents = card_limit_cents
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        # executescript commits on its own, so it runs outside _tx.
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        # sqlite3 connections must not cross threads; one per activity thread.
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # A cancel, pause or shutdown reaches a threaded activity as an exception raised
        # into its thread between any two bytecodes: between BEGIN and the try, or before
        # the ROLLBACK, it would leave this thread's connection holding SQLite's write
        # lock, and every other thread's transaction would wait out the busy timeout and
        # fail. In an activity it is raised after the transaction instead.
        with activity.shield_thread_cancel_exception() if activity.in_activity() else nullcontext():
            db = self._connection()
            # IMMEDIATE takes the write lock up front, so check-then-act is atomic.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------ inventory

    def reserve(self, key: str, order_id: str, lines: Sequence[tuple[str, int]]) -> str:
        """Reserve every line or nothing; returns the reservation id (= key)."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM reservations WHERE key = ?", (key,)).fetchone():
                return key
            for sku, quantity in lines:
                stock = 0 if sku.startswith(OUT_OF_STOCK_PREFIX) else DEFAULT_STOCK
                db.execute("INSERT OR IGNORE INTO inventory VALUES (?, ?)", (sku, stock))
                (available,) = db.execute(
                    "SELECT available FROM inventory WHERE sku = ?", (sku,)
                ).fetchone()
                if available < quantity:
                    raise OutOfStock(f"{sku}: {quantity} wanted, {available} available")
                db.execute("UPDATE inventory SET available = available - ? WHERE sku = ?",
                           (quantity, sku))
            now = time.time()
            encoded = ";".join(f"{sku}:{qty}" for sku, qty in lines)
            db.execute("INSERT INTO reservations VALUES (?, ?, 'reserved', ?, ?, ?)",
                       (key, order_id, encoded, now, now))
        return key

    def release(self, key: str, order_id: str = "") -> Undo:
        """Give a reservation's units back, once; void the key when nothing is reserved."""
        with self._tx() as db:
            row = db.execute("SELECT status, lines FROM reservations WHERE key = ?",
                             (key,)).fetchone()
            if row is None or row[0] == VOID:
                return _void(db, "reservations", key, order_id, exists=row is not None)
            status, encoded = row
            if status != "reserved":
                return Undo(undone=False, state=status)
            for line in encoded.split(";"):
                sku, qty = line.rsplit(":", 1)
                db.execute("UPDATE inventory SET available = available + ? WHERE sku = ?",
                           (int(qty), sku))
            db.execute("UPDATE reservations SET status = 'released', updated_at = ? WHERE key = ?",
                       (time.time(), key))
        return Undo(undone=True, state="released")

    def available(self, sku: str) -> int | None:
        """Units of a SKU on hand, or None when never seen."""
        row = self._connection().execute(
            "SELECT available FROM inventory WHERE sku = ?", (sku,)
        ).fetchone()
        return None if row is None else int(row[0])

    # ------------------------------------------------------------ payments

    def charge(self, key: str, order_id: str, amount_cents: int, currency: str) -> str:
        """Capture a payment once; returns the payment id (= key)."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM payments WHERE key = ?", (key,)).fetchone():
                return key
            if amount_cents > self.card_limit_cents:
                raise PaymentDeclined(
                    f"{amount_cents} {currency} is above the card limit {self.card_limit_cents}"
                )
            now = time.time()
            db.execute("INSERT INTO payments VALUES (?, ?, 'charged', ?, ?, ?, ?)",
                       (key, order_id, amount_cents, currency, now, now))
        return key

    def refund(self, key: str, order_id: str = "") -> Undo:
        """Refund a captured payment, once; void the key when nothing was charged."""
        return self._undo("payments", key, order_id, "charged", "refunded")

    # ------------------------------------------------------------ shipments

    def create_shipment(self, key: str, order_id: str, country: str) -> str:
        """Create a shipment once; returns the shipment id (= key)."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM shipments WHERE key = ?", (key,)).fetchone():
                return key
            if country in NO_CARRIER_COUNTRIES:
                raise ShipmentRejected(f"no carrier ships to {country}")
            now = time.time()
            db.execute("INSERT INTO shipments VALUES (?, ?, 'created', ?, ?, ?)",
                       (key, order_id, country, now, now))
        return key

    def cancel_shipment(self, key: str, order_id: str = "") -> Undo:
        """Cancel a created shipment, once; void the key when none was created."""
        return self._undo("shipments", key, order_id, "created", "cancelled")

    def _undo(self, table: str, key: str, order_id: str, done: str, undone: str) -> Undo:
        with self._tx() as db:
            row = db.execute(f"SELECT status FROM {table} WHERE key = ?", (key,)).fetchone()  # noqa: S608 - table is ours
            if row is None or row[0] == VOID:
                return _void(db, table, key, order_id, exists=row is not None)
            if row[0] != done:
                return Undo(undone=False, state=row[0])
            db.execute(f"UPDATE {table} SET status = ?, updated_at = ? WHERE key = ?",  # noqa: S608
                       (undone, time.time(), key))
        return Undo(undone=True, state=undone)

    # ------------------------------------------------------------ batches

    def process_item(self, key: str, batch_id: str, item_id: str) -> bool:
        """Record one batch item as processed, once; True when this call did it."""
        with self._tx() as db:
            cursor = db.execute("INSERT OR IGNORE INTO batch_items VALUES (?, ?, ?, ?)",
                                (key, batch_id, item_id, time.time()))
        return cursor.rowcount == 1

    def record_failures(self, batch_id: str, chunk: int,
                        failures: list[tuple[str, str]]) -> int:
        """Record failed items (id, reason) of a chunk, once each; returns how many were new."""
        now = time.time()
        with self._tx() as db:
            cursor = db.executemany(
                "INSERT OR IGNORE INTO batch_failures VALUES (?, ?, ?, ?, ?)",
                [(batch_id, item, chunk, reason, now) for item, reason in failures])
        return cursor.rowcount

    def failed_items(self, batch_id: str, *, limit: int = -1,
                     offset: int = 0) -> list[tuple[str, str]]:
        """Failed items of a batch as (item id, reason), in chunk order: all, or a page of them."""
        return [(str(item), str(reason)) for item, reason in self._connection().execute(
            "SELECT item_id, reason FROM batch_failures WHERE batch_id = ? "
            "ORDER BY chunk, item_id LIMIT ? OFFSET ?", (batch_id, limit, offset))]

    def failed_count(self, batch_id: str) -> int:
        """How many items of a batch failed."""
        row = self._connection().execute(
            "SELECT COUNT(*) FROM batch_failures WHERE batch_id = ?", (batch_id,)).fetchone()
        return int(row[0])

    def processed_items(self, batch_id: str) -> int:
        """How many distinct items of a batch were processed."""
        row = self._connection().execute(
            "SELECT COUNT(*) FROM batch_items WHERE batch_id = ?", (batch_id,)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------ reading

    def rows(self, table: str, order_id: str | None = None) -> list[dict[str, object]]:
        """Rows of ``reservations``, ``payments`` or ``shipments`` (for checks and tests)."""
        if table not in {"reservations", "payments", "shipments"}:
            raise ValueError(table)
        db = self._connection()
        db.row_factory = sqlite3.Row
        try:
            query = f"SELECT * FROM {table}"  # noqa: S608 - table checked above
            cursor = (db.execute(query + " WHERE order_id = ?", (order_id,)) if order_id
                      else db.execute(query))
            return [dict(row) for row in cursor.fetchall()]
        finally:
            db.row_factory = None


def open_store(settings: Settings) -> Store:
    """The reference store that ``settings`` (relayflow's, with ``ReferenceSettings`` beside) name.

    Raises:
        SettingError: A reference setting is bad (one line naming it).
    """
    reference = ReferenceSettings.of(settings)
    return Store(reference.store_path, card_limit_cents=reference.card_limit_cents)
