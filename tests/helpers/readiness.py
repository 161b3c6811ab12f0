"""What a bridge's or worker's HTTP endpoints say: readiness and one metric's value."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Ready", "metric", "readiness", "readiness_until"]

Ready = tuple[int, dict[str, object]]
"""``/health/ready``'s status and body."""


async def readiness(session: aiohttp.ClientSession, port: int | None) -> Ready:
    """``/health/ready`` of the endpoints on ``port``."""
    async with session.get(f"http://127.0.0.1:{port}/health/ready") as answer:
        return answer.status, await answer.json()


async def readiness_until(session: aiohttp.ClientSession, port: int | None,
                          wanted: Callable[[Ready], bool], within: float = 90.0) -> Ready:
    """``/health/ready`` once ``wanted`` (bounded), asked every 0.2 s."""
    deadline = time.monotonic() + within
    while not wanted(answer := await readiness(session, port)):
        assert time.monotonic() < deadline, f"readiness stayed {answer}"
        await asyncio.sleep(0.2)
    return answer


async def metric(session: aiohttp.ClientSession, port: int | None, name: str,
                 labels: dict[str, str]) -> float | None:
    """The value of the sample ``name{labels}`` on ``/metrics``; None when it is not there."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as answer:
        text = await answer.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None
