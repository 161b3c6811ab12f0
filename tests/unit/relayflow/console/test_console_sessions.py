"""Live sessions: bounded, and forgetting one only ever signs someone out."""

from __future__ import annotations

import time

import pytest

from relayflow.console import sessions
from relayflow.console.sessions import LiveSessions

LATER = time.time() + 3600


def test_a_users_oldest_session_ends_past_the_per_user_bound() -> None:
    live = LiveSessions()
    ann = [live.start("ann", "h", LATER) for _ in range(sessions._LIVE_PER_USER)]
    max_ = live.start("max", "h", LATER)
    newest = live.start("ann", "h", LATER)
    assert not live.is_live(ann[0], "ann", "h")
    assert all(live.is_live(sid, "ann", "h") for sid in [*ann[1:], newest])
    assert live.is_live(max_, "max", "h")


def test_the_oldest_session_ends_past_the_bound_and_none_comes_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "_LIVE_KEPT", 100)  # the rule, not the number, is tested
    live = LiveSessions()
    first = live.start("u0", "h", LATER)
    live.end(first)
    sids = [live.start(f"u{n}", "h", LATER) for n in range(1, sessions._LIVE_KEPT + 1)]
    assert len(live) == sessions._LIVE_KEPT
    assert not live.is_live(first, "u0", "h")
    live.start("late", "h", LATER)
    assert len(live) == sessions._LIVE_KEPT
    assert not live.is_live(sids[0], "u1", "h")  # the oldest ended
    assert live.is_live(sids[-1], f"u{sessions._LIVE_KEPT}", "h")


def test_a_session_counts_only_for_its_user_its_password_and_its_time() -> None:
    live = LiveSessions()
    sid = live.start("ann", "h1", LATER)
    assert not live.is_live(sid, "max", "h1")
    assert not live.is_live(sid, "ann", "h1")  # a mismatch ends it for good
    old = live.start("ann", "h1", LATER)
    assert not live.is_live(old, "ann", "h2")
    assert not live.is_live(old, "ann", "h1")
    assert not live.is_live(live.start("ann", "h1", time.time() - 1), "ann", "h1")
    assert not live.is_live(None, "ann", "h1")
    assert len(live) == 0
