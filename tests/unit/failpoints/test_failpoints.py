"""Failpoints are inert unless armed, and an armed one kills its process on the n-th hit.

``failpoints`` is the repository's test tool, not installed with relayflow:
the bridge and the activities raise a ``relayflow.failpoint`` audit event at
each point, which only a process started through ``python -m failpoints``
listens to.
"""

from __future__ import annotations

import os
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
for i in range(3):
    print(i, flush=True)
    sys.audit("relayflow.failpoint", "here")  # what the bridge and the activities raise
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


@pytest.mark.parametrize("spec", [None, "", "here@2"])
def test_a_process_not_started_through_the_tool_never_listens(spec: str | None) -> None:
    # An installed relayflow raises the events into nothing: no hook, no import of the tool.
    done = _run(spec, PRODUCT_SCRIPT)
    assert (done.returncode, done.stdout.split()) == (0, ["0", "1", "2", "False"])


def test_the_launcher_arms_the_products_points(tmp_path: Path) -> None:
    # `python -m failpoints SCRIPT` runs an installed console script armed; "python" here
    # is a stand-in entry point registered by a throwaway distribution on the path.
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import sys\n\ndef main() -> int:\n" + "".join(
            f"    print({i}, flush=True)\n    sys.audit('relayflow.failpoint', 'here')\n"
            for i in range(3)) + "    return 0\n")
    info = tmp_path / "probe_pkg-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-pkg\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nprobe = probe_pkg:main\n")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    armed = subprocess.run([sys.executable, "-m", "failpoints", "probe"], cwd=ROOT, text=True,
                           env=env | {failpoints.ENV: "here@3"}, capture_output=True,
                           check=False, timeout=60)
    assert armed.returncode == -signal.SIGKILL, armed.stderr
    assert armed.stdout.split() == ["0", "1", "2"]
    assert "failpoint here hit 3 times" in armed.stderr
    unarmed = subprocess.run([sys.executable, "-m", "failpoints", "probe"], cwd=ROOT, text=True,
                             env=env, capture_output=True, check=False, timeout=60)
    assert (unarmed.returncode, unarmed.stdout.split()) == (0, ["0", "1", "2"])
