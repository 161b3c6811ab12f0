"""relayflow's reference application: orders (a saga with approvals) and batches (bounded fan-out).

An application like any other: its events, topics, ``.avsc`` files,
workflows, activities, settings and routes live here and reach the framework
only through ``relayflow.Application`` (``RELAYFLOW_APP=relayflow.reference:APP``).
No framework module imports it.

``APP`` and ``ROUTES`` are imported on first use: the workflow sandbox imports
this package for every workflow run, and must not pay for the whole application.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relayflow.reference.app import APP, ROUTES

__all__ = ["APP", "ROUTES"]


def __getattr__(name: str) -> Any:
    """Import ``APP`` or ``ROUTES`` from ``relayflow.reference.app`` on first use."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.app"), name)
