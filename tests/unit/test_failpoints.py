"""Failpoints are inert unless armed, and an armed one kills its process on the n-th hit."""

from __future__ import annotations

import signal
import subprocess
import sys

import failpoints

SCRIPT = """
import failpoints
for i in range(3):
    print(i, flush=True)
    failpoints.hit("here")
"""


def _run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {} if spec is None else {failpoints.ENV: spec}
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, check=False, timeout=60)


def test_an_unarmed_point_does_nothing() -> None:
    done = _run(None)
    assert (done.returncode, done.stdout.split()) == (0, ["0", "1", "2"])
    failpoints.hit("here")  # this test process is not armed either


def test_an_armed_point_kills_on_its_nth_hit() -> None:
    done = _run("elsewhere, here@2")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1"]
