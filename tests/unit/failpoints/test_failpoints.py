"""Failpoints are inert unless armed, and an armed one kills its process on the n-th hit.

``failpoints`` is the repository's test tool, not installed with relayflow:
the bridge and the activities reach it through their ``_failpoints`` modules,
which import it only in a process started armed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import failpoints

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import failpoints
for i in range(3):
    print(i, flush=True)
    failpoints.hit("here")
"""

PRODUCT_SCRIPT = """
import sys
from {package}._failpoints import failpoint
for i in range(3):
    print(i, flush=True)
    failpoint("here")
print("failpoints" in sys.modules, flush=True)
"""


def _run(spec: str | None, script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT)} | ({} if spec is None else {failpoints.ENV: spec})
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=60)


def test_an_unarmed_point_does_nothing() -> None:
    done = _run(None)
    assert (done.returncode, done.stdout.split()) == (0, ["0", "1", "2"])
    failpoints.hit("here")  # this test process is not armed either


def test_an_armed_point_kills_on_its_nth_hit() -> None:
    done = _run("elsewhere, here@2")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1"]


@pytest.mark.parametrize("package", ["bridge", "activities"])
@pytest.mark.parametrize("spec", [None, ""])
def test_the_products_hook_does_not_even_import_the_tool_unarmed(package: str,
                                                                spec: str | None) -> None:
    done = _run(spec, PRODUCT_SCRIPT.format(package=package))
    assert (done.returncode, done.stdout.split()) == (0, ["0", "1", "2", "False"])


@pytest.mark.parametrize("package", ["bridge", "activities"])
def test_the_products_hook_kills_when_armed(package: str) -> None:
    done = _run("here@3", PRODUCT_SCRIPT.format(package=package))
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1", "2"]
