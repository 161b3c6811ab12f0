"""Who writes the reference application's input topics on a secured dev broker (``InputProducers``).

Approval decisions come from the approvers' tools alone: the principal
``approvals`` is the only one that may write ``approvals.decisions``. Orders
and batch requests are written by ``tools`` (the framework's default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from relayflow.reference.topics import APPROVALS_DECISIONS

__all__ = ["APPROVALS_PRINCIPAL", "ReferenceProducers"]

APPROVALS_PRINCIPAL = "approvals"
"""The principal that alone writes approval decisions."""


@dataclass(frozen=True)
class ReferenceProducers:
    """The reference application's ``InputProducers``.

    Attributes:
        input_producers: Input topic → the principal that alone may write it.
    """

    input_producers: Mapping[str, str] = field(
        default_factory=lambda: {APPROVALS_DECISIONS: APPROVALS_PRINCIPAL})
