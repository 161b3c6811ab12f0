"""What the reference application's console pages work with, built once per running console."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from relayflow.console.web import Console
from relayflow.operate.signing import console_key
from relayflow.reference.activities.store import Store, open_store
from relayflow.reference.console.batches import BatchSizes
from relayflow.reference.console.inbox import Orders
from schemas.signatures import SigningKey

__all__ = ["ReferenceConsole"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReferenceConsole:
    """The running console and the reference application's own readers.

    Attributes:
        console: The running console (clients, settings, codec, users).
        store: The reference store (batch failures).
        orders: The order behind each saga, read once.
        sizes: The size of each batch, read once.
        key: The key the console signs its users' decisions with
            (``relayflow.operate.signing.console_key``); None: unsigned.
    """

    console: Console
    store: Store
    orders: Orders
    sizes: BatchSizes
    key: SigningKey | None = None

    @classmethod
    def around(cls, console: Console) -> ReferenceConsole:
        """The readers for ``console``, its store and signing key from the settings.

        Raises:
            relayflow.operate.errors.BadInput: The console's key file is bad.
        """
        key = console_key(console.settings)
        if key is None:
            _log.warning("console: no decision key (RELAYFLOW_CONSOLE_DECISION_KEY_FILE): "
                         "decisions go out unsigned, and sagas that require proof refuse them")
        else:
            _log.info("console: signing decisions with key %s", key.key_id)
        return cls(console, open_store(console.settings),
                   Orders(console.client), BatchSizes(console.client), key)
