"""What the reference application's console pages work with, built once per running console."""

from __future__ import annotations

from dataclasses import dataclass

from relayflow.console.web import Console
from relayflow.reference.activities.store import Store, open_store
from relayflow.reference.console.batches import BatchSizes
from relayflow.reference.console.inbox import Orders

__all__ = ["ReferenceConsole"]


@dataclass(frozen=True, slots=True)
class ReferenceConsole:
    """The running console and the reference application's own readers.

    Attributes:
        console: The running console (clients, settings, codec, users).
        store: The reference store (batch failures).
        orders: The order behind each saga, read once.
        sizes: The size of each batch, read once.
    """

    console: Console
    store: Store
    orders: Orders
    sizes: BatchSizes

    @classmethod
    def around(cls, console: Console) -> ReferenceConsole:
        """The readers for ``console``, its store from the settings."""
        return cls(console, open_store(console.settings),
                   Orders(console.client), BatchSizes(console.client))
