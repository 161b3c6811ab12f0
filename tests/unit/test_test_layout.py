"""Test modules and conftest files are leaves: nothing imports them.

Shared fakes live in ``tests/helpers/fakes.py``, shared helpers in ``tests/helpers/support.py``
and the other non-test modules under ``tests/``; a test module that imported
another would run (and collect) the other's tests' module code twice, and tie
the two files together by accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench", "relayflow", "bridge", "workflows", "activities", "schemas")


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def _package_of(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1]  # a module's package; relative imports start here


def imported_test_modules(source: str, path: Path) -> list[str]:
    """Every test module or conftest that ``source`` (the file at ``path``) imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names
                      if any(_is_test_module(part) for part in alias.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: level 1 is the file's own package
                base = _package_of(path)
                base = base[:len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if any(_is_test_module(part) for part in module.split(".")):
                found.append(module)
            # ``from tests.unit import test_bridge`` imports the module by name.
            found += [f"{module}.{alias.name}" for alias in node.names
                      if _is_test_module(alias.name)]
    return found


def _python_files() -> list[Path]:
    return sorted(path for folder in SCANNED for path in (ROOT / folder).rglob("*.py"))


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offenders = {
        str(path.relative_to(ROOT)): bad for path in _python_files()
        if (bad := imported_test_modules(path.read_text(encoding="utf-8"), path))
    }
    assert offenders == {}


def test_the_scan_sees_the_shared_modules() -> None:
    scanned = {str(path.relative_to(ROOT)) for path in _python_files()}
    assert {"tests/helpers/fakes.py", "tests/helpers/support.py",
            "tests/unit/bridge/test_bridge.py", "tests/faults/conftest.py"} <= scanned


HERE = ROOT / "tests" / "unit" / "test_example.py"


@pytest.mark.parametrize(("source", "expected"), [
    ("from tests.unit.test_bridge import Record", ["tests.unit.test_bridge"]),
    ("import tests.faults.test_crashes", ["tests.faults.test_crashes"]),
    ("from tests.unit import test_codec", ["tests.unit.test_codec"]),
    ("from tests.integration.conftest import relayflow_running", ["tests.integration.conftest"]),
    ("from tests.conftest import start_workflow_environment", ["tests.conftest"]),
    ("from .test_bridge import Record", ["tests.unit.test_bridge"]),
    ("from . import conftest", ["tests.unit.conftest"]),
    ("from ..faults.test_crashes import orders", ["tests.faults.test_crashes"]),
    ("def f():\n    from tests.unit.test_codec import samples\n", ["tests.unit.test_codec"]),
    (("from tests.helpers.support import order_placed\nfrom tests.helpers.fakes import Record\n"
      "import pytest"), []),
    ("from tests.faults.checks import assert_clean", []),
])
def test_the_check_finds_every_form_of_importing_a_test_module(
        source: str, expected: list[str]) -> None:
    assert imported_test_modules(source, HERE) == expected
