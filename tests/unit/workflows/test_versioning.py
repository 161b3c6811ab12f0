"""Versioning behaviours are declared only while the process runs versioned workers."""

from __future__ import annotations

from temporalio.common import VersioningBehavior

from workflows.versioning import use_versioned_workers, versioned_workers, versioning_behavior


def test_an_unversioned_process_declares_no_behaviour() -> None:
    # The server refuses a behaviour from a worker without deployment options.
    use_versioned_workers(versioned=False)
    assert versioning_behavior(VersioningBehavior.PINNED) is VersioningBehavior.UNSPECIFIED


def test_a_versioned_process_declares_the_behaviour_wanted_and_the_block_restores() -> None:
    use_versioned_workers(versioned=False)
    with versioned_workers():
        assert versioning_behavior(VersioningBehavior.AUTO_UPGRADE) is (
            VersioningBehavior.AUTO_UPGRADE)
    assert versioning_behavior(VersioningBehavior.PINNED) is VersioningBehavior.UNSPECIFIED
