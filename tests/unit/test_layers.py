"""The import rules of design.md section 1, checked on the source (an import-linter equivalent).

Every import counts: ``import x`` and ``from x import y``, at module level or
inside a function, relative ones resolved to their package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCT = ("schemas", "activities", "workflows", "bridge", "relayflow")
"""The installed packages, from the bottom up."""
TOOLS = ("failpoints", "bench", "devtools", "tests", "examples")
"""Code that uses the product and that the product never imports."""

ALLOWED: dict[str, set[str]] = {
    # The contract: a leaf.
    "schemas": set(),
    # Test-only failure injection, not installed: a leaf of its own; the bridge and the
    # activities mark points through their _failpoints modules (imported only when armed).
    "failpoints": set(),
    "activities": {"schemas", "failpoints"},
    # Workflow code plus activity definitions, the latter only through the sandbox passthrough.
    "workflows": {"schemas", "activities"},
    # The bridge refers to workflows by name and gets its clients handed in.
    "bridge": {"schemas", "failpoints"},
    # The top layer: composition root, settings, CLI, dev stack.
    "relayflow": {"schemas", "failpoints", "activities", "workflows", "bridge"},
    # Development-only tools (Toxiproxy control), shared by tests and benchmarks.
    "devtools": {"relayflow", "schemas"},
    "bench": {*PRODUCT, "devtools"},
    "tests": {*PRODUCT, "failpoints", "devtools", "bench", "examples"},
    "examples": {*PRODUCT},
}


def _package_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0]


def _modules(path: Path, own: str | None = None) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, at module level outside any ``with``) for every import.

    ``own`` is the file's dotted module name (default: from its place under ROOT).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    own = own or ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = own.split(".")[: -node.level]
                names = [node.module] if node.module else [a.name for a in node.names]
                for name in names:
                    yield ".".join([*base, name]), node.lineno, id(node) in top
                continue
            else:
                module = node.module or ""
            yield module, node.lineno, id(node) in top


def _sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py")
                  if ".venv" not in p.parts)


def _violations(package: str) -> list[str]:
    found = []
    for path in _sources(package):
        for module, line, _ in _modules(path):
            target = module.split(".")[0]
            if target in ALLOWED and target != package and target not in ALLOWED[package]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    assert _violations(package) == []


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    # The rules are only as good as the parser: plain, from, nested and relative imports.
    source = tmp_path / "probe.py"
    source.write_text("import relayflow.config\nfrom bridge import app\nfrom . import retry\n"
                      "def f():\n    from relayflow.runtime.bootstrap import running\n")
    found = sorted((line, module, top) for module, line, top in _modules(source, "bridge.probe"))
    assert found == [(1, "relayflow.config", True), (2, "bridge", True),
                     (3, "bridge.retry", True), (5, "relayflow.runtime.bootstrap", False)]


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {package: set() for package in ALLOWED}
    for package, targets in graph.items():
        for path in _sources(package):
            for module, _, _ in _modules(path):
                target = module.split(".")[0]
                if target in graph and target != package:
                    targets.add(target)
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in visiting:
            cycle = [*visiting[visiting.index(node):], node]
            pytest.fail("package cycle: " + " -> ".join(cycle))
        if node in done:
            return
        visiting.append(node)
        for target in sorted(graph[node]):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_workflows_import_our_code_only_through_the_passthrough() -> None:
    # Outside ``with workflow.unsafe.imports_passed_through():`` the sandbox would
    # re-import activities and schemas (and their third-party imports) for every run.
    for path in _sources("workflows"):
        for module, line, top_level in _modules(path):
            ours = module.split(".")[0] in ALLOWED
            assert not (ours and top_level), f"{path.relative_to(ROOT)}:{line} imports {module}"


def test_the_pytest_plugin_is_imported_by_tests_only() -> None:
    for path in _sources(*PRODUCT, "bench", "devtools", "examples"):
        if path.is_relative_to(ROOT / "relayflow" / "testing"):
            continue
        for module, line, _ in _modules(path):
            assert not module.startswith("relayflow.testing"), \
                f"{path.relative_to(ROOT)}:{line} imports {module}"
