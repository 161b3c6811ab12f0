"""The shape of a consumed Kafka record, as far as the bridge reads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["ConsumedRecord", "where"]


class ConsumedRecord(Protocol):
    """The fields of an aiokafka ``ConsumerRecord`` the bridge reads.

    Attributes:
        topic: Source topic.
        partition: Source partition.
        offset: Offset within the partition.
        key: Raw key bytes (UTF-8 business key when well-formed).
        value: Raw value bytes (Avro when well-formed).
        headers: Raw header pairs, values untouched (maybe not UTF-8, maybe None).
    """

    @property
    def topic(self) -> str: ...  # noqa: D102

    @property
    def partition(self) -> int: ...  # noqa: D102

    @property
    def offset(self) -> int: ...  # noqa: D102

    @property
    def key(self) -> bytes | None: ...  # noqa: D102

    @property
    def value(self) -> bytes | None: ...  # noqa: D102

    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...  # noqa: D102


def where(record: ConsumedRecord) -> str:
    """Kafka coordinates for logs: ``topic[partition]@offset``."""
    return f"{record.topic}[{record.partition}]@{record.offset}"
