"""The two kinds of failure of a record: retry later, or dead-letter now.

Every step of the bridge (decoding, the Temporal call, the dead-letter write)
reports what went wrong as one of these, so the consumer decides the same way
whichever step failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from schemas.dead_letters import DlqReason

__all__ = ["REFUSED_RECORD", "PermanentFailure", "TransientFailure", "refused", "writing_to"]

REFUSED_RECORD: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,  # the producer's max_request_size, or the topic's max.message.bytes
    RecordTooLargeError,  # the producer's buffer
    RecordListTooLargeError,  # the broker's segment size
    CorruptRecordException,  # the broker refuses the record itself (also InvalidMessageError)
)
"""Producer errors about the record itself: sending the same bytes again cannot succeed.

They are ``KafkaError``s like an outage, so every write must test for them
(``refused``) before treating a ``KafkaError`` as transient; retried, they
would hold their partition forever."""


def refused(error: BaseException) -> bool:
    """True when a producer error refuses the record for good (``REFUSED_RECORD``)."""
    return isinstance(error, REFUSED_RECORD)


class TransientFailure(Exception):
    """Retrying later may succeed (Temporal or Kafka unavailable, overloaded)."""


class PermanentFailure(Exception):
    """The record can never be processed; it goes to the dead-letter topic.

    Attributes:
        reason: The ``dlq-reason`` header: a member of the contract's table, so
            a reason cannot be emitted without being documented there.
    """

    def __init__(self, reason: DlqReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@contextmanager
def writing_to(topic: str) -> Iterator[None]:
    """Name the missing ACL when the broker refuses a write to ``topic``.

    The error stays a ``KafkaError``, so the caller keeps retrying it as
    transient: nothing is committed meanwhile, and granting the ACL lets the
    bridge carry on without a restart.
    """
    try:
        yield
    except TopicAuthorizationFailedError as error:
        raise TopicAuthorizationFailedError(
            f"not authorized to write to {topic}: this principal needs the ACL "
            f"WRITE on topic {topic}") from error
