"""``bridge.retry``: a retry waiting out its backoff goes as soon as the dependency is back."""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord

from bridge.retry import Deadline, Health
from relayflow.reference.topics import ORDERS_EVENTS


def _record() -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(ORDERS_EVENTS, 0, 0, 0, 0, b"k", b"v", None, 0, 0, [])


async def test_a_success_wakes_the_retries_backing_off() -> None:
    health, stopping = Health("Temporal"), asyncio.Event()
    health.failed(_record(), RuntimeError("down"))
    sleeping = asyncio.create_task(Deadline(None, stopping).sleep(30.0, health.recovered))
    await asyncio.sleep(0.05)
    assert not sleeping.done()  # still backing off while the outage lasts
    health.succeeded()
    assert await asyncio.wait_for(sleeping, 5.0) is True  # retry now, not after 30 s


async def test_a_new_outage_is_waited_out_again() -> None:
    health, stopping = Health("Temporal"), asyncio.Event()
    health.failed(_record(), RuntimeError("down"))
    health.succeeded()
    health.failed(_record(), RuntimeError("down again"))  # the earlier recovery is stale
    assert await Deadline(None, stopping).sleep(0.05, health.recovered) is True
    assert not health.recovered.is_set()


async def test_shutdown_ends_the_wait_with_false() -> None:
    health, stopping = Health("Temporal"), asyncio.Event()
    health.failed(_record(), RuntimeError("down"))
    sleeping = asyncio.create_task(Deadline(None, stopping).sleep(30.0, health.recovered))
    stopping.set()
    assert await asyncio.wait_for(sleeping, 5.0) is False
