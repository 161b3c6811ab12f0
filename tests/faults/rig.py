"""The fault rig: relayflow's bridge and worker as real processes that tests kill on purpose.

Each test gets its own task queue, consumer group (starting at the current
end of every input topic, so earlier tests' records are not replayed), store
file and key prefix; ``relayflow verify``'s checks then run on that prefix.
Every process is started by the rig and killed by pid at the end, whatever
happened. The ``rig`` fixture (``tests/faults/conftest.py``) opens one per test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocol
from aiokafka.structs import RecordMetadata

from failpoints import ENV as FAILPOINTS_ENV
from relayflow.config.settings import Settings
from relayflow.kafka.reads import start_group_at_end
from relayflow.operate.verify import VerifyReport, verify_until_settled
from relayflow.reference.app import APP
from relayflow.runtime.clients import kafka_clients
from schemas import Event
from schemas.framing import to_record

__all__ = ["CHUNK_HEARTBEAT_TIMEOUT_S", "CODEC", "KAFKA_UNREACHABLE", "REPOSITORY",
           "STEP_TIMEOUT_S", "Members", "Rig", "Service", "members_of", "open_rig"]

Members = dict[str, frozenset[TopicPartition]]
"""A consumer group's members and the partitions assigned to each."""

KAFKA_UNREACHABLE = "Unable connect to node"
"""What a process's aiokafka client logs each time it cannot reach a broker."""

STEP_TIMEOUT_S = 3.0
"""The reference saga's step timeout in the rig's processes (the reference app's: 10 s)."""
CHUNK_HEARTBEAT_TIMEOUT_S = 5.0
"""A chunk's heartbeat timeout in the rig's processes; heartbeats go at most every 4 s."""

CODEC = APP.codec()
REPOSITORY = Path(__file__).resolve().parents[2]
"""Holds ``failpoints``, the test tool an armed process imports (it is not installed)."""


@dataclass
class Service:
    """One ``relayflow bridge`` or ``relayflow worker`` process."""

    name: str
    command: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, failpoints: str = "") -> Service:
        """Start it (again), armed with ``failpoints``."""
        env = {**os.environ, **self.env, FAILPOINTS_ENV: failpoints}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"),
                                                          str(REPOSITORY)]))
        with self.log.open("ab") as out:
            # Through the failpoints launcher, which listens to the product's points.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "failpoints", "relayflow", self.command], env=env,
                stdout=out, stderr=subprocess.STDOUT)
        return self

    @property
    def alive(self) -> bool:
        """Running now."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """``kill -9``."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def mark(self) -> int:
        """Where its log ends now: ``logged(..., since=mark())`` looks only at what follows."""
        return self.log.stat().st_size if self.log.exists() else 0

    async def logged(self, text: str, within: float = 60.0, since: int = 0) -> None:
        """Wait (bounded) until its log contains ``text`` (after ``since``, a ``mark()``)."""
        wanted = text.encode()
        for _ in range(int(within * 10)):
            if self.log.exists() and wanted in self.log.read_bytes()[since:]:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} never logged {text!r}; log: {self.log}")

    async def died(self, within: float = 120.0) -> int:
        """Wait (bounded) until it exits by itself, e.g. at a failpoint; its exit code."""
        assert self.proc is not None
        for _ in range(int(within * 10)):
            code = self.proc.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} still running after {within}s; log: {self.log}")


def members_of(described: Any) -> Members:
    """The members of the one group of a ``DescribeGroups`` response, with their partitions."""
    [found] = described.to_object()["groups"]
    return {m["member_id"]: frozenset(
        ConsumerProtocol.ASSIGNMENT.decode(m["member_assignment"]).partitions()
        if m["member_assignment"] else ()) for m in found["members"]}


@dataclass
class Rig:
    """Settings, processes and a producer for one fault test."""

    settings: Settings
    producer: AIOKafkaProducer
    logs: Path
    prefix: str = field(default_factory=lambda: f"f{uuid.uuid4().hex[:6]}")
    services: list[Service] = field(default_factory=list)

    def service(self, command: str, name: str | None = None,
                env: dict[str, str] | None = None) -> Service:
        """A (not yet started) bridge or worker process of this rig; ``env`` overrides."""
        name = name or f"{command}-{len(self.services)}"
        made = Service(name, command, {**self.settings.as_env(), **(env or {})},
                       self.logs / f"{name}.log")
        self.services.append(made)
        return made

    def bridge(self, failpoints: str = "", name: str | None = None,
               env: dict[str, str] | None = None) -> Service:
        """Start a bridge process."""
        return self.service("bridge", name, env).start(failpoints)

    def worker(self, failpoints: str = "", name: str | None = None,
               env: dict[str, str] | None = None) -> Service:
        """Start a worker process."""
        return self.service("worker", name, env).start(failpoints)

    def order_id(self, n: int) -> str:
        """The n-th order id of this test (all share the rig's prefix)."""
        return f"{self.prefix}-{n}"

    async def produce(self, topic: str, events: Iterable[Event],
                      partition: int | None = None) -> list[RecordMetadata]:
        """Produce events (contract headers, key = business key), acked by every replica.

        ``partition``: all of them there, instead of where their keys go.

        Returns:
            Where each event landed, in order.
        """
        sends = []
        for event in events:
            record = to_record(event, CODEC)
            sends.append(await self.producer.send(topic, record.value, key=record.key,
                                                  headers=record.headers,
                                                  partition=partition))
        return list(await asyncio.gather(*sends))

    async def members(self, wanted: Callable[[Members], bool], within: float = 60.0,
                      ) -> Members:
        """The bridges' consumer group as its coordinator reports it, once ``wanted`` (bounded).

        Returns:
            Member id -> the partitions assigned to it, from the broker itself.
        """
        group = self.settings.kafka_consumer_group
        async with asyncio.timeout(within):
            while True:
                async with kafka_clients(self.settings).started_admin() as admin:
                    [described] = await admin.describe_consumer_groups([group])
                members = members_of(described)
                if wanted(members):
                    return members
                await asyncio.sleep(0.2)

    async def settled(self, wait_seconds: float = 180.0) -> VerifyReport:
        """``relayflow verify`` on this test's keys once everything finished (bounded)."""
        return await verify_until_settled(self.settings, key_prefix=self.prefix,
                                          wait_seconds=wait_seconds)

    def stop_all(self) -> None:
        """Kill every process this rig started, by pid."""
        for service in self.services:
            service.kill()


@asynccontextmanager
async def open_rig(base: Settings, logs: Path) -> AsyncIterator[Rig]:
    """A rig on ``base``'s Kafka and Temporal: fresh task queue, group and store.

    The store (``RELAYFLOW_STORE_PATH``) is set in the environment, which the
    rig's processes inherit and ``relayflow verify`` (``settled``) reads.

    Args:
        base: Where Kafka and Temporal are.
        logs: Folder for the processes' logs and the store.
    """
    suffix = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "task_queue": f"fault-{suffix}", "kafka_consumer_group": f"fault-{suffix}",
        "bridge_signal_hold_seconds": 20.0, "bridge_shutdown_seconds": 10.0,
    })
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                             APP.input_topics)
    producer = kafka_clients(settings).producer(linger_ms=5)
    await producer.start()
    made = Rig(settings, producer, logs)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("RELAYFLOW_STORE_PATH", str(logs / "store.db"))
        # A killed worker's activities are retried sooner than at the reference app's
        # 10 s (its steps take milliseconds; a chunk heartbeats every 0.8 x its timeout).
        environment.setenv("RELAYFLOW_ORDER_STEP_TIMEOUT_SECONDS", str(STEP_TIMEOUT_S))
        environment.setenv("RELAYFLOW_BATCH_CHUNK_HEARTBEAT_TIMEOUT_SECONDS",
                           str(CHUNK_HEARTBEAT_TIMEOUT_S))
        try:
            yield made
        finally:
            made.stop_all()
            await producer.stop()
