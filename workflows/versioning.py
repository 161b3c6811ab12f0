"""Versioning behaviours that only a versioned worker declares.

Temporal refuses a workflow task completion that carries a versioning
behaviour from a worker without deployment options ("versioning behavior
cannot be specified without deployment options being set"), and the SDK sends
whatever ``@workflow.defn(versioning_behavior=...)`` says. So a workflow
declares its behaviour through :func:`versioning_behavior`, which gives it only
once the process runs versioned workers (:func:`use_versioned_workers`).

Temporal's sandbox imports a workflow's module again for each run, so a run
reads the switch as it is when the run starts on this worker. This module must
be imported through ``workflow.unsafe.imports_passed_through()`` (the sandbox
must see the process's switch, not a fresh copy of it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.common import VersioningBehavior

__all__ = ["use_versioned_workers", "versioned_workers", "versioning_behavior"]

_switch = {"versioned": False}


def versioning_behavior(wanted: VersioningBehavior) -> VersioningBehavior:
    """``wanted`` while the process runs versioned workers, else unspecified.

    Args:
        wanted: The behaviour the workflow type has on a versioned worker.

    Returns:
        What ``@workflow.defn(versioning_behavior=...)`` should say now.
    """
    return wanted if _switch["versioned"] else VersioningBehavior.UNSPECIFIED


def use_versioned_workers(*, versioned: bool) -> None:
    """Say whether this process's workers are versioned (the worker sets it as it is built).

    Args:
        versioned: True when the workers run as a Worker Deployment version.
    """
    _switch["versioned"] = versioned


@contextmanager
def versioned_workers() -> Iterator[None]:
    """Versioned workers inside the block (tests that run both kinds in one process)."""
    before = _switch["versioned"]
    use_versioned_workers(versioned=True)
    try:
        yield
    finally:
        use_versioned_workers(versioned=before)
