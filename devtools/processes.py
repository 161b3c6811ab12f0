"""Stopping the helper processes the dev tools start (Prometheus, the OTLP receiver)."""

from __future__ import annotations

import subprocess
from typing import Any

__all__ = ["stop"]


def stop(process: subprocess.Popen[Any], *, grace: float) -> None:
    """SIGTERM ``process``; SIGKILL it if it has not ended after ``grace`` seconds; reap it.

    Args:
        process: A process this one started.
        grace: Seconds it gets to end by itself.
    """
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
