"""The import rules of design.md section 1, checked on the source (an import-linter equivalent).

Every import counts: ``import x`` and ``from x import y``, at module level or
inside a function, relative ones resolved to their package.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
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
    # bench.codec measures the example applications' events, each in its own format.
    "bench": {*PRODUCT, "devtools", "examples"},
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
    workflow_modules = [*_sources("workflows"), *_sources("relayflow/reference/workflows")]
    for path in workflow_modules:
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


# Inside relayflow/: one sub-package per concern (design.md section 1).


def _imports(root: Path, *places: str) -> Iterator[tuple[str, str, int]]:
    """(file relative to ``root``, imported module, line) for every import under ``places``."""
    for place in places:
        for path in sorted((root / place).rglob("*.py")):
            if ".venv" in path.parts:
                continue
            own = ".".join(path.relative_to(root).with_suffix("").parts)
            for module, line, _ in _modules(path, own):
                yield path.relative_to(root).as_posix(), module, line


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def reference_offenders(root: Path = ROOT) -> list[str]:
    """Framework (and example, dev tool) modules that import the reference app."""
    # The reference app reaches the framework only through Application; nothing
    # of the framework (nor the examples, nor the dev tools) reaches back.
    return [f"{file}:{line} imports {module}"
            for file, module, line in _imports(root, *PRODUCT, "examples", "devtools")
            if not file.startswith("relayflow/reference/")
            and _within(module, "relayflow.reference")]


def config_offenders(root: Path = ROOT) -> list[str]:
    """Imports of relayflow/config that leave it: configuration is a leaf of relayflow."""
    return [f"{file}:{line} imports {module}"
            for file, module, line in _imports(root, "relayflow/config")
            if _within(module, "relayflow") and not _within(module, "relayflow.config")]


def cli_offenders(root: Path = ROOT) -> list[str]:
    """Imports of relayflow.cli from outside it: the command line is entered, never imported."""
    return [f"{file}:{line} imports {module}"
            for file, module, line in _imports(root, *PRODUCT, "bench", "devtools", "examples")
            if not file.startswith("relayflow/cli/") and _within(module, "relayflow.cli")]


FRONT_ENDS = ("relayflow/cli", "relayflow/console")
"""The CLI and the console: they reach Kafka and Temporal through operate and runtime."""
CLIENT_LIBRARIES = ("aiokafka", "faststream", "temporalio", "relayflow.kafka")
"""Kafka and Temporal: a front end reaches them through relayflow.operate and relayflow.runtime."""
HANDED_IN = {"aiokafka": "AIOKafkaProducer", "temporalio.client": "Client"}
"""Client types a front end may name (the console keeps what it is handed), never build."""


def front_end_offenders(root: Path = ROOT) -> list[str]:
    """Front-end imports of Kafka or Temporal beyond the types of clients they are handed."""
    found = []
    for place in FRONT_ENDS:
        for path in sorted((root / place).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and not node.level:
                    taken = [(node.module or "", alias.name) for alias in node.names]
                elif isinstance(node, ast.Import):
                    taken = [(alias.name, "") for alias in node.names]
                else:
                    continue
                found += [f"{path.relative_to(root)}:{node.lineno} imports {module}"
                          f"{'.' + name if name else ''}" for module, name in taken
                          if any(_within(module, library) for library in CLIENT_LIBRARIES)
                          and HANDED_IN.get(module) != name]
    return found


def _calls(path: Path) -> Iterator[tuple[str, int]]:
    """(called name, line) of every call whose callee is a name or a name's attribute."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            callee = node.func
            if isinstance(callee, ast.Name):
                yield callee.id, node.lineno
            elif isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name):
                yield f"{callee.value.id}.{callee.attr}", node.lineno


CLIENT_FACTORIES = ("KafkaClients", "Client.connect")
"""Calls that build Kafka and Temporal clients: relayflow/runtime/clients.py makes them all."""


def client_offenders(root: Path = ROOT) -> list[str]:
    """Calls that build a client outside the composition root."""
    home = root / "relayflow" / "runtime" / "clients.py"
    return [f"{path.relative_to(root)}:{line} calls {name}"
            for place in (*PRODUCT, "bench", "devtools", "examples")
            for path in sorted((root / place).rglob("*.py"))
            for name, line in _calls(path)
            if name in CLIENT_FACTORIES and path != home]


SUB_PACKAGE_RULES = (reference_offenders, config_offenders, cli_offenders, front_end_offenders,
                     client_offenders)


@pytest.mark.parametrize("rule", SUB_PACKAGE_RULES, ids=lambda rule: rule.__name__)
def test_sub_package_rule_holds(rule: Callable[[Path], list[str]]) -> None:
    assert rule(ROOT) == []


def test_each_sub_package_rule_sees_its_violation(tmp_path: Path) -> None:
    # The rules are only as good as their scan: each finds the violation planted for it.
    planted = {
        "relayflow/operate/probe.py": "from relayflow.reference.app import APP\n",
        "relayflow/config/probe.py": "from relayflow.kafka import clients\n",
        "relayflow/devstack/probe.py": "def f():\n    from relayflow.cli.main import app\n",
        "relayflow/console/probe.py": "from aiokafka import AIOKafkaConsumer\n",
        "bench/probe.py": "async def f(s):\n    await Client.connect(s)\n",
    }
    for name, source in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source, encoding="utf-8")
    found = {rule.__name__: rule(tmp_path) for rule in SUB_PACKAGE_RULES}
    assert found == {
        "reference_offenders": ["relayflow/operate/probe.py:1 imports relayflow.reference.app"],
        "config_offenders": ["relayflow/config/probe.py:1 imports relayflow.kafka"],
        "cli_offenders": ["relayflow/devstack/probe.py:2 imports relayflow.cli.main"],
        "front_end_offenders": ["relayflow/console/probe.py:1 imports aiokafka.AIOKafkaConsumer"],
        "client_offenders": ["bench/probe.py:2 calls Client.connect"],
    }
