"""Failed sign-ins: too many for one user name, or from one address, lock it out a while.

Each user name and each client address has its recent failures (those within
the window). The failure that reaches the limit locks that name or address
out: until the lock-out ends, sign-ins for it are refused before the
password is checked, so even the right one does not sign in. A successful
sign-in clears the name's failures, not the address's (one account of one's
own must not buy more guesses at the others). Lock-outs do not grow with
further attempts. Names and addresses are kept like the console's caches
(``memory.remember``: the oldest go first when full), so memory stays bounded
whatever names are tried.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from relayflow.config.settings import Settings
from relayflow.console.memory import remember

__all__ = ["Lockout", "SignInThrottle", "wait_text"]

log = logging.getLogger(__name__)

_NAME_KEPT = 64
"""Characters of a tried user name kept (a valid name has at most 64)."""


@dataclass(frozen=True, slots=True)
class Lockout:
    """A refused sign-in: what is locked out and for how much longer.

    Attributes:
        by: ``user`` (the name tried) or ``address`` (where the attempt came from).
        seconds: How long until sign-ins are checked again.
    """

    by: Literal["user", "address"]
    seconds: float


@dataclass(slots=True)
class _Failures:
    times: deque[float] = field(default_factory=deque)
    locked_until: float = -math.inf


class _Counter:
    """Recent failures per key, and the keys' lock-outs."""

    def __init__(self, limit: int, window: float, lockout: float) -> None:
        self.limit, self.window, self.lockout = limit, window, lockout
        self.keys: dict[str, _Failures] = {}

    def locked_for(self, key: str, now: float) -> float:
        found = self.keys.get(key)
        return max(0.0, found.locked_until - now) if found is not None else 0.0

    def failed(self, key: str, now: float) -> bool:
        """Count a failure; True when it locked ``key`` out."""
        if self.limit == 0:
            return False
        found = self.keys.get(key)
        if found is None:
            found = _Failures()
            remember(self.keys, key, found)
        while found.times and found.times[0] <= now - self.window:
            found.times.popleft()
        found.times.append(now)
        if len(found.times) < self.limit:
            return False
        found.times.clear()
        found.locked_until = now + self.lockout
        return True


class SignInThrottle:
    """Counts failed sign-ins per user name and per client address; refuses locked-out ones.

    Args:
        attempts: Failures of one user name within ``window_seconds`` that lock it out (0: none).
        address_attempts: The same for one client address (0: none).
        window_seconds: How far back failures count.
        lockout_seconds: How long a lock-out lasts.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(self, *, attempts: int, address_attempts: int, window_seconds: float,
                 lockout_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._users = _Counter(attempts, window_seconds, lockout_seconds)
        self._addresses = _Counter(address_attempts, window_seconds, lockout_seconds)
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings,
                      clock: Callable[[], float] = time.monotonic) -> SignInThrottle:
        """The throttle of the ``console_signin_*`` settings."""
        return cls(attempts=settings.console_signin_attempts,
                   address_attempts=settings.console_signin_address_attempts,
                   window_seconds=settings.console_signin_window_seconds,
                   lockout_seconds=settings.console_signin_lockout_seconds, clock=clock)

    def locked(self, name: str, address: str) -> Lockout | None:
        """The lock-out refusing a sign-in as ``name`` from ``address`` (the longer one), if any."""
        now = self._clock()
        user = self._users.locked_for(name[:_NAME_KEPT], now)
        by_address = self._addresses.locked_for(address, now)
        if user == by_address == 0:
            return None
        return Lockout("user", user) if user >= by_address else Lockout("address", by_address)

    def failed(self, name: str, address: str) -> Lockout | None:
        """Count a failed sign-in; the lock-out it started, if it reached a limit.

        A lock-out is logged as one warning naming the user name and the address.
        """
        now = self._clock()
        user = self._users.failed(name[:_NAME_KEPT], now)
        by_address = self._addresses.failed(address, now)
        if not (user or by_address):
            return None
        locked = " and ".join(what for what, hit in (
            (f"user {name[:_NAME_KEPT]!r}", user), (f"client {address}", by_address)) if hit)
        log.warning("console: sign-in locked out for %g s: %s, after too many failures within "
                    "%g s (the last as user %r from client %s)", self._users.lockout, locked,
                    self._users.window, name[:_NAME_KEPT], address)
        return self.locked(name, address)

    def succeeded(self, name: str) -> None:
        """``name`` signed in: their failures are forgotten."""
        self._users.keys.pop(name[:_NAME_KEPT], None)


def wait_text(seconds: float) -> str:
    """``seconds`` as people say it, rounded up: ``45 seconds``, ``5 minutes``."""
    whole = math.ceil(seconds)
    if whole < 120:  # noqa: PLR2004 - below two minutes, seconds say more
        return f"{whole} second{'' if whole == 1 else 's'}"
    return f"{math.ceil(whole / 60)} minutes"
