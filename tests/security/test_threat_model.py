"""The threat model's table names tests that exist: every attack it lists is performed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "security" / "threat-model.md"


def _named_tests() -> list[tuple[str, str]]:
    """(file, test) for every test the table's last column names (``::name`` reuses the file)."""
    named: list[tuple[str, str]] = []
    for row in TABLE.read_text(encoding="utf-8").splitlines():
        if not row.startswith("| ") or row.startswith(("| asset", "| ---")):
            continue
        file = ""
        for file_part, test in re.findall(r"`(test_\w+\.py)?::(\w+)`", row.rsplit("|", 2)[-2]):
            file = file_part or file
            named.append((file, test))
    return named


def _tests_in(file: str) -> set[str]:
    tree = ast.parse((ROOT / "tests" / "security" / file).read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")}


def test_every_test_the_threat_model_names_exists() -> None:
    named = _named_tests()
    assert len(named) >= 12  # the table was read, not skipped
    missing = [f"{file}::{test}" for file, test in named if test not in _tests_in(file)]
    assert missing == []


def test_every_security_test_file_is_in_the_threat_model() -> None:
    files = {file for file, _ in _named_tests()}
    on_disk = {path.name for path in (ROOT / "tests" / "security").glob("test_*.py")}
    assert on_disk - files == {Path(__file__).name}
