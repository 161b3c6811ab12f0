"""Where a fault test may kill a bridge on purpose: ``failpoint(name)``, a no-op unless armed.

The hook is the repository's ``failpoints`` package, a test tool that is not
installed with relayflow. Only a process started with ``RELAYFLOW_FAILPOINTS``
set (the fault rig sets it and puts the repository on ``PYTHONPATH``) imports
it, so an installed relayflow never looks for it, and an armed process that
cannot find it fails at start instead of passing a fault test by accident.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["failpoint"]


def _unarmed(name: str) -> None:
    del name


def _hook() -> Callable[[str], None]:
    if not os.environ.get("RELAYFLOW_FAILPOINTS"):
        return _unarmed
    from failpoints import hit  # noqa: PLC0415 - the test tool, only when armed

    return hit


failpoint: Callable[[str], None] = _hook()
"""Die here (SIGKILL) if this point is armed and this is its n-th hit; otherwise nothing."""
