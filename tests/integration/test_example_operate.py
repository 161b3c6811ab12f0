"""The tickets example operated through the CLI: dead letters, status and verify serve any app.

The tickets application's bridge and worker run in this process (the
plugin's ``relayflow_system``); the commands run with
``RELAYFLOW_APP=examples.tickets.app:APP``, as an operator of that app would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import Result

from examples.tickets.app import APP
from examples.tickets.events import TicketAnswered, TicketExpired, TicketOpened, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS, TICKETS_OUTCOMES
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.testing import AppKafka
from schemas.topics import dlq_topic
from tests.helpers.support import as_json, cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TICKETS = {"RELAYFLOW_APP": "examples.tickets.app:APP"}
DLQ = dlq_topic(TICKETS_EVENTS)


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


async def tickets_cli(settings: Settings, *args: str) -> Result:
    return await cli(settings, *args, **TICKETS)


def opened(ticket_id: str, **fields: Any) -> TicketOpened:
    return TicketOpened(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                        ticket_id=ticket_id, customer_id="c-1", subject="printer on fire",
                        **fields)


async def eventually(settings: Settings, args: tuple[str, ...],
                     done: Callable[[Any], bool]) -> Any:
    """The JSON a command prints, once ``done`` holds for it (bounded)."""
    found: Any = None
    for _ in range(100):
        found = as_json(await tickets_cli(settings, *args))
        if done(found):
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"relayflow {' '.join(args)}: never as expected: {found}")


def mine(listing: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [d for d in listing["dead_letters"] if d["key"] == key]


async def test_the_poison_record_is_listed_shown_replayed_and_released(
        system: Settings, relayflow_kafka: AppKafka) -> None:
    key = f"T-poison-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(TICKETS_EVENTS, b"not avro", key=key)
    parked_behind = opened(key, answer_within_seconds=1)  # same key: parked behind it
    await relayflow_kafka.send(parked_behind)

    listing = await eventually(system, ("dlq", "list", "-o", "json", "--limit", "10000"),
                               lambda found: len(mine(found, key)) == 2)
    assert listing["topics"] == [DLQ]
    poison, parked = mine(listing, key)
    assert [poison["dead_letter"]["reason"], parked["dead_letter"]["reason"]] == \
        ["unknown-framing", "parked"]
    assert {"topic": TICKETS_EVENTS, "key": key} in [
        {"topic": p["topic"], "key": p["key"]} for p in listing["parked_keys"]]
    text = await tickets_cli(system, "dlq", "list", "--limit", "10000")
    assert text.exit_code == 0, text.output
    assert f"dead letters on {DLQ}:" in text.stdout
    assert f"parked keys of {TICKETS_EVENTS}:" in text.stdout
    assert key in text.stdout
    assert f"b'{key}'" not in text.stdout

    # Shown decoded with the tickets codec: the parked record is a valid TicketOpened.
    where = (DLQ, str(parked["partition"]), str(parked["offset"]))
    shown = as_json(await tickets_cli(system, "dlq", "show", *where, "-o", "json"))
    assert shown["problem"] is None
    assert shown["event"]["ticket_id"] == key
    assert shown["event"]["event_id"] == str(parked_behind.event_id)
    shown_text = await tickets_cli(system, "dlq", "show", *where)
    assert shown_text.exit_code == 0, shown_text.output
    assert f"key      {key}\n" in shown_text.stdout
    assert "not decodable" not in shown_text.stdout
    assert '"subject": "printer on fire"' in shown_text.stdout

    # Replayed without the poison record: the ticket's workflow starts, the key is released.
    replayed = await tickets_cli(system, "dlq", "replay", TICKETS_EVENTS, key, "--parked-only")
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {DLQ}/{parked['partition']}/{parked['offset']} (parked" in replayed.stdout
    await eventually(system, ("dlq", "list", "-o", "json"),
                     lambda found: key not in [p["key"] for p in found["parked_keys"]])
    status = await eventually(system, ("status", key, "-o", "json"),
                              lambda found: bool(found["workflows"]))
    assert [w["workflow_id"] for w in status["workflows"]] == [f"ticket-{key}"]

    # Another poison key, released without replay: its dead letter stays.
    other = f"T-poison-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(TICKETS_EVENTS, b"\xc3\x01garbage", key=other)
    await eventually(system, ("dlq", "list", "-o", "json"),
                     lambda found: other in [p["key"] for p in found["parked_keys"]])
    released = await tickets_cli(system, "dlq", "release", TICKETS_EVENTS, other)
    assert (released.exit_code, released.stdout) == (0, "released\n"), released.output
    after = as_json(await tickets_cli(system, "dlq", "list", "-o", "json", "--limit", "10000"))
    assert other not in [p["key"] for p in after["parked_keys"]]
    assert [d["dead_letter"]["reason"] for d in mine(after, other)] == ["truncated"]


async def test_verify_checks_a_tickets_workload_and_catches_a_second_outcome(
        system: Settings, relayflow_kafka: AppKafka) -> None:
    prefix = f"V{uuid.uuid4().hex[:6]}-"
    answered, expiring = f"{prefix}1", f"{prefix}2"
    await relayflow_kafka.send(opened(answered))
    await relayflow_kafka.send(TicketAnswered(event_id=uuid.uuid4(),
                                              occurred_at=datetime.now(UTC),
                                              ticket_id=answered, answered_by="linus"))
    await relayflow_kafka.send(opened(expiring, answer_within_seconds=1))
    resolved = await relayflow_kafka.wait_for(TicketResolved, key=answered, timeout=60)
    await relayflow_kafka.wait_for(TicketExpired, key=expiring, timeout=60)

    clean = await tickets_cli(system, "verify", "--key-prefix", prefix, "--wait", "30",
                              "-o", "json")
    report = as_json(clean)
    assert report["ok"] is True, report
    assert report["inputs"] == 3
    assert report["workflows"] == {"TicketWorkflow": 2}
    assert report["settled"] == {"TicketExpired": 1, "TicketResolved": 1}
    assert report["violations"] == []

    # A second, different outcome for the expired ticket: verify must fail.
    await relayflow_kafka.send(resolved.model_copy(update={
        "event_id": uuid.uuid4(), "ticket_id": expiring}), topic=TICKETS_OUTCOMES)
    broken = await tickets_cli(system, "verify", "--key-prefix", prefix, "-o", "json")
    assert broken.exit_code == 1, broken.output
    violations = json.loads(broken.stdout)["violations"]
    assert [(v["rule"], v["subject"]) for v in violations] == \
        [("two-outcomes", f"ticket-{expiring}")]
    text = await tickets_cli(system, "verify", "--key-prefix", prefix)
    assert text.exit_code == 1
    assert "VIOLATIONS: two-outcomes x1" in text.stdout
    assert "workflows TicketWorkflow 2" in text.stdout
