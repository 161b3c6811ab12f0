"""``relayflow approval-key``: a key file for the signer, a registry entry for the workers."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from relayflow.cli.main import app
from relayflow.operate.errors import EXIT_BAD_INPUT
from schemas.signatures import SigningKey, TrustedKey


def test_it_writes_a_private_key_and_prints_the_entry_that_trusts_it(tmp_path: Path) -> None:
    out = tmp_path / "ann.key"
    result = CliRunner().invoke(app, ["approval-key", "--id", "ann-2026", "--acts-for",
                                      "orders-approvers/ann", "--out", str(out)])
    assert result.exit_code == 0, result.output
    entry = TrustedKey.model_validate(json.loads(result.stdout))
    key = SigningKey.load(out)
    assert (entry.key_id, entry.acts_for) == ("ann-2026", ("orders-approvers/ann",))
    assert entry.verifies(b"m", key.sign(b"m"))  # the printed entry is this key's
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["private_key"] not in result.output


def test_it_never_overwrites_a_key(tmp_path: Path) -> None:
    out = tmp_path / "ann.key"
    out.write_text("precious")
    result = CliRunner().invoke(app, ["approval-key", "--id", "k", "--acts-for", "g",
                                      "--out", str(out)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "never overwritten" in result.output
    assert out.read_text() == "precious"
