"""The tickets example run by the real CLI: ``relayflow run --app examples.tickets.app:APP``.

The process gets the session stack's settings through its environment (and a
task queue and consumer group of its own); the test drives it through Kafka
with the plugin's ``relayflow_kafka``, then stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from examples.tickets.app import APP
from examples.tickets.events import TicketAnswered, TicketOpened, TicketResolved
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.kafka.reads import start_group_at_end
from relayflow.runtime.clients import kafka_clients
from relayflow.testing import AppKafka, isolated

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


def _relayflow_command() -> str:
    beside = Path(sys.executable).with_name("relayflow")  # the venv's console script
    found = str(beside) if beside.exists() else shutil.which("relayflow")
    assert found, "the relayflow command is not installed"
    return found


async def test_relayflow_run_serves_the_tickets_app_and_stops_cleanly_on_sigterm(
        relayflow_stack: Settings, relayflow_kafka: AppKafka,
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings = isolated(relayflow_stack, "cli")
    # The new group starts at the topics' end: other tests' tickets are not this process's.
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                             APP.input_topics)
    root = request.config.rootpath
    # `examples` is not installed: like a team's own package in its checkout, it is
    # found in the working folder (relayflow puts it on sys.path, as uvicorn does).
    env = {**os.environ, **settings.as_env()}
    env.pop("RELAYFLOW_APP", None)
    env.pop("PYTHONPATH", None)
    log = tmp_path / "relayflow-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited for below
            [_relayflow_command(), "run", "--app", "examples.tickets.app:APP"],
            cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        ticket_id = f"T-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        await relayflow_kafka.send(TicketOpened(event_id=uuid.uuid4(), occurred_at=now,
                                                ticket_id=ticket_id, customer_id="c-9",
                                                subject="invoice missing"))
        await relayflow_kafka.send(TicketAnswered(event_id=uuid.uuid4(), occurred_at=now,
                                                  ticket_id=ticket_id, answered_by="linus"))
        try:
            resolved = await relayflow_kafka.wait_for(TicketResolved, key=ticket_id, timeout=90)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- relayflow run output ---\n"
                                 f"{log.read_text(errors='replace')[-4000:]}") from None
        assert resolved.answered_by == "linus"

        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 60)
        assert code == 0, log.read_text(errors="replace")[-4000:]
        output_text = log.read_text(errors="replace")
        assert "bridge consuming tickets.events" in output_text
        assert "as group cli-" in output_text
        assert "for tickets" in output_text
        assert "Traceback" not in output_text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
