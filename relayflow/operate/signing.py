"""Signing decisions: the keys ``relayflow decide`` and the console sign with.

A decision that must prove who made it is signed with an Ed25519 key whose
public half the application's workflows trust (``schemas.signatures``). The
application says what a signature covers (``SignedDecisions.signed``);
relayflow finds the key:

- ``relayflow decide``: ``--key FILE``, else ``RELAYFLOW_DECISION_KEY_FILE``,
  else the dev stack's ``<data_dir>/keys/approver.key`` when it exists;
- the console: ``RELAYFLOW_CONSOLE_DECISION_KEY_FILE``, else the dev stack's
  ``<data_dir>/keys/console.key`` when it exists; it signs for its signed-in
  user (``<group>/<name>``), so its key is registered as acting for the
  groups it serves.

Without a key a decision goes out unsigned; a workflow that requires
signatures refuses it, and says so (``unsigned``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from relayflow.config.settings import Settings
from relayflow.operate.errors import BadInput
from schemas.models import Event
from schemas.signatures import SigningKey

__all__ = [
    "APPROVER_KEY",
    "CONSOLE_KEY",
    "DEV_KEYS",
    "SignedDecisions",
    "console_key",
    "decision_key",
    "load_key",
]

DEV_KEYS = "keys"
"""Folder of the dev stack's keys under ``data_dir``."""
APPROVER_KEY = "approver.key"
"""The dev stack's operator key (``relayflow decide``)."""
CONSOLE_KEY = "console.key"
"""The dev stack's console key."""


@runtime_checkable
class SignedDecisions(Protocol):
    """An ``Approvals`` extension whose workflows verify signed decisions."""

    def signed(self, event: Event, key: SigningKey) -> Event:
        """``event`` (a decision event of this application) signed with ``key``."""
        ...

    def dev_keys(self, data_dir: Path) -> Sequence[Path]:
        """Make the dev stack's keys under ``data_dir`` (once) and register them; their files."""
        ...


def load_key(path: Path) -> SigningKey:
    """The signing key in ``path``.

    Raises:
        BadInput: It cannot be read or is not a key file (the key is never shown).
    """
    try:
        return SigningKey.load(path)
    except ValueError as error:
        raise BadInput(str(error)) from None


def _configured(given: Path | None, data_dir: Path, name: str) -> SigningKey | None:
    if given is not None:
        return load_key(given)
    dev = data_dir / DEV_KEYS / name
    return load_key(dev) if dev.is_file() else None


def decision_key(settings: Settings, given: Path | None = None) -> SigningKey | None:
    """The key ``relayflow decide`` signs with (module docs), or None.

    Raises:
        BadInput: The key file named cannot be read or is not a key file.
    """
    return _configured(given or settings.decision_key_file, settings.data_dir, APPROVER_KEY)


def console_key(settings: Settings) -> SigningKey | None:
    """The key the console signs its users' decisions with (module docs), or None.

    Raises:
        BadInput: The key file named cannot be read or is not a key file.
    """
    return _configured(settings.console_decision_key_file, settings.data_dir, CONSOLE_KEY)
