"""Failed console sign-ins: counts, windows, lock-outs of pairs and addresses, waits, memory.

A clock the tests move by hand stands in for ``time.monotonic``.
"""

from __future__ import annotations

import logging

import pytest

from relayflow.config.settings import SettingError, Settings, load_settings
from relayflow.console.throttle import Lockout, SignInThrottle, wait_text

HERE, THERE = "10.0.0.1", "10.0.0.2"


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, *, attempts: int = 3, address_attempts: int = 5,
             backoff: float = 0.0) -> SignInThrottle:
    return SignInThrottle(attempts=attempts, address_attempts=address_attempts,
                          window_seconds=60, lockout_seconds=300, backoff_seconds=backoff,
                          clock=clock)


def fail(limits: SignInThrottle, name: str, address: str, times: int) -> Lockout | None:
    """``times`` failures; the first lock-out one of them started, if any."""
    started = [limits.failed(name, address) for _ in range(times)]
    return next((lockout for lockout in started if lockout is not None), None)


def test_the_nth_failure_locks_the_name_out_from_that_address_for_the_lockout() -> None:
    clock = Clock()
    limits = throttle(clock)
    assert fail(limits, "ann", HERE, 2) is None
    assert limits.locked("ann", HERE) is None
    assert limits.failed("ann", HERE) == Lockout("user", 300)
    clock.now += 299
    assert limits.locked("ann", HERE) == Lockout("user", 1)
    assert limits.locked("ann", THERE) is None  # the name, from elsewhere, is not locked out
    assert limits.locked("max", HERE) is None  # others still sign in
    clock.now += 1
    assert limits.locked("ann", HERE) is None
    # The lock-out starts a fresh count.
    assert fail(limits, "ann", HERE, 2) is None


def test_a_name_that_failed_from_anywhere_waits_longer_up_to_the_backoff() -> None:
    clock = Clock()
    limits = throttle(clock, attempts=3, address_attempts=0, backoff=3)
    for n in range(2):
        limits.failed("ann", f"10.9.0.{n}")
    assert limits.wait("ann") == 0
    waits = []
    for n in range(2, 7):
        limits.failed("ann", f"10.9.0.{n}")
        waits.append(limits.wait("ann"))
        assert limits.locked("ann", f"10.9.0.{n}") is None  # slowed, never locked out
    assert waits == [0.5, 1, 2, 3, 3]
    assert limits.wait("max") == 0
    clock.now += 60
    assert limits.wait("ann") == 0  # the failures left the window
    assert throttle(clock, backoff=0).wait("ann") == 0


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    limits = throttle(clock)
    fail(limits, "ann", HERE, 2)
    clock.now += 60
    assert fail(limits, "ann", HERE, 2) is None
    clock.now += 59
    assert limits.failed("ann", HERE) is not None  # two of the last 60 s, and this one


def test_a_successful_sign_in_forgets_the_names_failures_not_the_addresss() -> None:
    clock = Clock()
    limits = throttle(clock, backoff=5)
    fail(limits, "ann", HERE, 2)
    fail(limits, "ann", THERE, 2)
    assert limits.wait("ann") > 0
    limits.succeeded("ann", HERE)
    assert limits.wait("ann") == 0
    assert limits.failed("ann", THERE) is not None  # another address's count stays
    assert fail(limits, "ann", HERE, 2) is None
    assert limits.locked("ann", HERE) is None
    # The address has 4 failures now: one more, under any name, locks it out.
    assert limits.failed("bob", HERE) == Lockout("address", 300)
    assert limits.locked("max", HERE) == Lockout("address", 300)
    assert limits.locked("max", THERE) is None


def test_an_address_trying_many_names_is_locked_out() -> None:
    clock = Clock()
    limits = throttle(clock)
    for n in range(4):
        assert limits.failed(f"user{n}", HERE) is None
    assert limits.failed("user4", HERE) == Lockout("address", 300)
    clock.now += 100
    # Both locked: the longer lock-out is the one told.
    assert fail(limits, "ann", HERE, 3) == Lockout("user", 300)
    assert limits.locked("ann", HERE) == Lockout("user", 300)
    assert limits.locked("ann", THERE) is None
    assert limits.locked("max", HERE) == Lockout("address", 200)


def test_zero_attempts_means_no_limit_of_that_kind() -> None:
    limits = throttle(Clock(), attempts=0, address_attempts=0)
    assert fail(limits, "ann", HERE, 100) is None
    assert limits.locked("ann", HERE) is None


def test_a_lockout_is_one_warning_with_the_name_and_the_address(
        caplog: pytest.LogCaptureFixture) -> None:
    limits = throttle(Clock(), address_attempts=3)
    with caplog.at_level(logging.WARNING, logger="relayflow.console.throttle"):
        fail(limits, "ann\nforged line", HERE, 3)
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "\n" not in line  # a name cannot start a log line of its own
    assert "user 'ann\\nforged line' from 10.0.0.1 and client 10.0.0.1" in line
    assert "for 300 s" in line


def test_memory_is_bounded_whatever_names_are_tried() -> None:
    clock = Clock()
    limits = throttle(clock, attempts=2, address_attempts=0)
    fail(limits, "first", HERE, 2)
    assert limits.locked("first", HERE) is not None
    for n in range(10_000):
        limits.failed(f"name{n}", HERE)
    assert len(limits._pairs.keys) == len(limits._names.keys) == 10_000  # the bound is the point
    assert limits.locked("first", HERE) is None  # the oldest went first
    limits.failed("x" * 100_000, HERE)
    assert max(map(len, limits._names.keys)) == 64
    assert max(map(len, limits._pairs.keys)) == 64 + 1 + len(HERE)


def test_wait_text_rounds_up() -> None:
    assert wait_text(0.2) == "1 second"
    assert wait_text(45.1) == "46 seconds"
    assert wait_text(119) == "119 seconds"
    assert wait_text(300) == "5 minutes"
    assert wait_text(301) == "6 minutes"


def test_settings_defaults_and_bad_values() -> None:
    limits = Settings()
    assert (limits.console_signin_attempts, limits.console_signin_address_attempts,
            limits.console_signin_window_seconds, limits.console_signin_lockout_seconds,
            limits.console_signin_backoff_seconds) == (5, 20, 300, 300, 5)
    with pytest.raises(SettingError, match="RELAYFLOW_CONSOLE_SIGNIN_LOCKOUT_SECONDS"):
        load_settings(console_signin_lockout_seconds=0)
