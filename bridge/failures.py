"""The two kinds of failure of a record: retry later, or dead-letter now.

Every step of the bridge (decoding, the Temporal call, the dead-letter write)
reports what went wrong as one of these, so the consumer decides the same way
whichever step failed.
"""

from __future__ import annotations

__all__ = ["PermanentFailure", "TransientFailure"]


class TransientFailure(Exception):
    """Retrying later may succeed (Temporal or Kafka unavailable, overloaded)."""


class PermanentFailure(Exception):
    """The record can never be processed; it goes to the dead-letter topic.

    Attributes:
        reason: Short machine-readable reason (the ``dlq-reason`` header), e.g.
            ``target-not-found``, ``target-closed``, ``rejected``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
