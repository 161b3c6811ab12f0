"""Failpoints: named places where a fault test can make a real process die on purpose.

Off unless the process was started with ``RELAYFLOW_FAILPOINTS``, e.g.
``RELAYFLOW_FAILPOINTS="bridge.before-commit@3,activity.charge-payment.after-store"``:
the process SIGKILLs itself (no cleanup, no flush, exactly like ``kill -9``)
the n-th time (default: the first) it reaches a named point. A test tool of
the repository, not installed with relayflow, and it imports nothing of ours.

The product marks its points with a standard-library audit event,
``sys.audit("relayflow.failpoint", name)``: no import, and next to no cost
while no audit hook listens. This package listens (``arm``) only in a process
started through it, ``python -m failpoints <console script> [args]`` (how the
fault rig starts ``relayflow bridge`` and ``relayflow worker``), so an
installed relayflow never looks for it.

Points: ``bridge.before-temporal`` (a record routed, the Temporal call not yet
made), ``bridge.before-commit`` (a batch acknowledged by Temporal, offsets
not committed), ``activity.charge-payment.after-store`` and
``activity.refund-payment.after-store`` (the store changed, the activity not
yet completed), ``activity.publish-outcome.after-send`` (the outcome is on
Kafka, the activity not yet completed), ``activity.process-items.after-item``
(a batch item's effect is in the store, the chunk's activity goes on),
``entity.before-continue-as-new`` (an entity workflow's handlers finished, its
continue-as-new not yet sent).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["ENV", "EVENT", "arm", "hit"]

ENV = "RELAYFLOW_FAILPOINTS"
EVENT = "relayflow.failpoint"
"""The audit event the product raises at each point, with the point's name."""


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


def _listen(event: str, args: tuple[object, ...]) -> None:
    if event == EVENT:
        hit(str(args[0]))


def arm() -> bool:
    """Listen to the product's points in this process if ``RELAYFLOW_FAILPOINTS`` names any.

    Returns:
        Whether any point is armed (an audit hook cannot be removed: it is only
        added when there is something to do).
    """
    if _ARMED:
        sys.addaudithook(_listen)
    return bool(_ARMED)
