"""Failpoints: named places where a fault test can make a real process die on purpose.

Off unless the process was started with ``RELAYFLOW_FAILPOINTS``, e.g.
``RELAYFLOW_FAILPOINTS="bridge.before-commit@3,activity.charge-payment.after-store"``:
the process SIGKILLs itself (no cleanup, no flush, exactly like ``kill -9``)
the n-th time (default: the first) it reaches a named point. A test tool of
the repository, not installed with relayflow, and it imports nothing of ours:
the bridge and the activities mark their points with ``failpoint(name)`` from
their private ``_failpoints`` modules, which import this package only in a
process started armed (the fault rig also puts the repository on ``PYTHONPATH``).

Points: ``bridge.before-temporal`` (a record routed, the Temporal call not yet
made), ``bridge.before-commit`` (a batch acknowledged by Temporal, offsets
not committed), ``activity.charge-payment.after-store`` and
``activity.refund-payment.after-store`` (the store changed, the activity not
yet completed), ``activity.publish-outcome.after-send`` (the outcome is on
Kafka, the activity not yet completed).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["ENV", "hit"]

ENV = "RELAYFLOW_FAILPOINTS"


def _armed(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("@")
        points[name] = int(nth or 1)
    return points


_ARMED = _armed(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()  # activities run in threads


def hit(name: str) -> None:
    """Die here (SIGKILL) if ``name`` is armed and this is its n-th hit; otherwise nothing."""
    if name not in _ARMED:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == _ARMED[name]:
            # The one line a post-mortem needs: where the process was killed on purpose.
            sys.stderr.write(f"failpoint {name} hit {_hits[name]} times: SIGKILL {os.getpid()}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
