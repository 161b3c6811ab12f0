"""CLI commands that need no running service."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.reference.activities.store import Store


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


@pytest.mark.parametrize("command", ["bridge", "worker", "run"])
@pytest.mark.parametrize(("spec", "why"), [
    ("no_such_package.app:APP", "No module named 'no_such_package'"),
    ("relayflow.reference:ROUTES", "not a relayflow Application"),
    ("relayflow.reference", "expected 'module:attribute'"),
])
def test_a_bad_application_is_refused_before_anything_connects(command: str, spec: str,
                                                               why: str) -> None:
    result = CliRunner().invoke(app, [command, "--app", spec])
    assert result.exit_code == 2, result.output
    assert why in _unboxed(result.output)


def test_relayflow_app_names_the_application_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_APP", "relayflow.reference:WORKFLOWS")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "not a relayflow Application" in _unboxed(result.output)


def _unboxed(output: str) -> str:
    # Typer prints errors in a box whose lines may break a message anywhere.
    return " ".join(output.replace("│", " ").split())
