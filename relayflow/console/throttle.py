"""Failed sign-ins: lock out a (user name, address) pair or an address; slow a user name down.

The policy, so that an outsider cannot lock a named approver out:

- A user name tried from one client address (the pair) that fails
  ``console_signin_attempts`` times within the window is locked out: until
  the lock-out ends, its sign-ins from that address are refused before the
  password is checked, so even the right one does not sign in there.
- A client address that fails ``console_signin_address_attempts`` times,
  whatever names it tries, is locked out the same way.
- A user name is never locked out. Once it has failed
  ``console_signin_attempts`` times within the window from anywhere, each
  sign-in as that name waits before its password is checked: 0.5 s, doubling
  with each further failure, at most ``console_signin_backoff_seconds``. So
  the right password from an address that is not locked out always signs in,
  at worst that much later.

The client address is the socket's peer, or behind a trusted proxy the
address it forwards (``relayflow.console.forwarded``), so junk sign-ins
through the proxy lock out their sender, not everyone behind it. A
successful sign-in clears the pair's failures and the name's wait, not the
address's (one account of one's own must not buy more guesses at the
others). Lock-outs do not grow with further attempts. Pairs, names and
addresses are kept like the console's caches (``memory.remember``: the
oldest go first when full), so memory stays bounded whatever is tried.
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
_RECENT_KEPT = 256
"""Most recent failures kept per user name (enough to reach any wait)."""
_FIRST_WAIT = 0.5
"""Seconds the first slowed-down sign-in as a name waits; each further failure doubles it."""


@dataclass(frozen=True, slots=True)
class Lockout:
    """A refused sign-in: what is locked out and for how much longer.

    Attributes:
        by: ``user`` (the name tried, from this address) or ``address`` (the
            address, whatever the name).
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


class _Recent:
    """Recent failures per key, never locking: how many there were within the window."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.keys: dict[str, deque[float]] = {}

    def count(self, key: str, now: float) -> int:
        found = self.keys.get(key)
        if found is None:
            return 0
        while found and found[0] <= now - self.window:
            found.popleft()
        return len(found)

    def failed(self, key: str, now: float) -> None:
        found = self.keys.get(key)
        if found is None:
            found = deque(maxlen=_RECENT_KEPT)
            remember(self.keys, key, found)
        found.append(now)


class SignInThrottle:
    """Counts failed sign-ins per (user name, address) pair, per address and per name.

    Args:
        attempts: Failures of one user name from one address within
            ``window_seconds`` that lock that pair out, and failures of the
            name from anywhere after which its sign-ins wait (0: neither).
        address_attempts: Failures of one client address that lock it out (0: none).
        window_seconds: How far back failures count.
        lockout_seconds: How long a lock-out lasts.
        backoff_seconds: The longest wait of a sign-in as a name that failed
            too often (0: no wait).
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(self, *, attempts: int, address_attempts: int, window_seconds: float,
                 lockout_seconds: float, backoff_seconds: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pairs = _Counter(attempts, window_seconds, lockout_seconds)
        self._addresses = _Counter(address_attempts, window_seconds, lockout_seconds)
        self._names = _Recent(window_seconds)
        self._attempts, self._backoff = attempts, backoff_seconds
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings,
                      clock: Callable[[], float] = time.monotonic) -> SignInThrottle:
        """The throttle of the ``console_signin_*`` settings."""
        return cls(attempts=settings.console_signin_attempts,
                   address_attempts=settings.console_signin_address_attempts,
                   window_seconds=settings.console_signin_window_seconds,
                   lockout_seconds=settings.console_signin_lockout_seconds,
                   backoff_seconds=settings.console_signin_backoff_seconds, clock=clock)

    def locked(self, name: str, address: str) -> Lockout | None:
        """The lock-out refusing a sign-in as ``name`` from ``address`` (the longer one), if any."""
        now = self._clock()
        user = self._pairs.locked_for(_pair(name, address), now)
        by_address = self._addresses.locked_for(address, now)
        if user == by_address == 0:
            return None
        return Lockout("user", user) if user >= by_address else Lockout("address", by_address)

    def wait(self, name: str) -> float:
        """Seconds a sign-in as ``name`` waits before its password is checked (0: none)."""
        if self._attempts == 0 or self._backoff == 0:
            return 0.0
        beyond = self._names.count(name[:_NAME_KEPT], self._clock()) - self._attempts
        return 0.0 if beyond < 0 else min(self._backoff, _FIRST_WAIT * 2.0 ** min(beyond, 32))

    def failed(self, name: str, address: str) -> Lockout | None:
        """Count a failed sign-in; the lock-out it started, if it reached a limit.

        A lock-out is logged as one warning naming the user name and the address.
        """
        now = self._clock()
        self._names.failed(name[:_NAME_KEPT], now)
        user = self._pairs.failed(_pair(name, address), now)
        by_address = self._addresses.failed(address, now)
        if not (user or by_address):
            return None
        locked = " and ".join(what for what, hit in (
            (f"user {name[:_NAME_KEPT]!r} from {address}", user),
            (f"client {address}", by_address)) if hit)
        log.warning("console: sign-in locked out for %g s: %s, after too many failures within "
                    "%g s (the last as user %r from client %s)", self._pairs.lockout, locked,
                    self._pairs.window, name[:_NAME_KEPT], address)
        return self.locked(name, address)

    def succeeded(self, name: str, address: str) -> None:
        """``name`` signed in from ``address``: that pair's failures and the name's wait go."""
        self._pairs.keys.pop(_pair(name, address), None)
        self._names.keys.pop(name[:_NAME_KEPT], None)


def _pair(name: str, address: str) -> str:
    return f"{name[:_NAME_KEPT]}\x00{address}"


def wait_text(seconds: float) -> str:
    """``seconds`` as people say it, rounded up: ``45 seconds``, ``5 minutes``."""
    whole = math.ceil(seconds)
    if whole < 120:  # noqa: PLR2004 - below two minutes, seconds say more
        return f"{whole} second{'' if whole == 1 else 's'}"
    return f"{math.ceil(whole / 60)} minutes"
