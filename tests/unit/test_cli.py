"""CLI commands that need no running service."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.store import Store
from relayflow.cli import app


def test_batch_failures_lists_every_failed_item(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = tmp_path / "store.db"
    Store(store_path, card_limit_cents=1).record_failures(
        "b1", 0, [("bad-0", "invalid"), ("bad-9", "timed out")])
    monkeypatch.setenv("RELAYFLOW_STORE_PATH", str(store_path))
    result = CliRunner().invoke(app, ["batch-failures", "b1"])
    assert result.exit_code == 0, result.output
    assert "bad-0\tinvalid" in result.stdout
    assert "bad-9\ttimed out" in result.stdout
    assert "2 failed item(s) in batch b1" in result.stderr
