"""The import rules of design.md, checked on the source (an import-linter equivalent)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"schemas", "workflows", "activities", "bridge", "relayflow"}

# package -> packages of ours it must never import
FORBIDDEN = {
    "schemas": {"workflows", "activities", "bridge", "relayflow"},
    "activities": {"workflows", "bridge", "relayflow"},
    "workflows": {"bridge", "relayflow"},
    "bridge": {"workflows", "activities"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_its_layer(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_workflows_import_activities_only_through_passthrough() -> None:
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level, outside `with imports_passed_through()`
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in {"activities", "schemas"}, path
