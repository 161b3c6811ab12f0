"""relayflow's public API: what ``from relayflow import ...`` gives an application author."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import relayflow
from examples.tickets.events import TicketExpired, TicketOpened
from relayflow import EventMeta, Inbound, PublishOutcomeInput, PublishOutcomeResult
from tests.helpers.public_api_workflow import PublicApiWorkflow

ROOT = Path(__file__).resolve().parents[3]
LOWER = ("schemas", "bridge", "workflows", "activities")


def test_every_public_name_resolves_and_is_documented() -> None:
    doc = relayflow.__doc__ or ""
    for name in relayflow.__all__:
        assert getattr(relayflow, name) is not None
        assert f"``{name}``" in doc, f"{name} is not described in relayflow's docstring"
    assert set(relayflow.__all__) <= set(dir(relayflow))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'ReferenceSettings'"):
        _ = relayflow.ReferenceSettings


def test_the_public_names_are_the_framework_modules_own() -> None:
    from bridge.routes import Route  # noqa: PLC0415
    from workflows.outcomes import publish_outcome  # noqa: PLC0415

    assert (relayflow.Route, relayflow.publish_outcome) == (Route, publish_outcome)


def test_the_version_is_the_installed_distributions() -> None:
    assert relayflow.__version__ == importlib.metadata.version("relayflow")


def test_importing_relayflow_loads_nothing_else() -> None:
    # The workflow sandbox imports the package for every run of a workflow under it.
    script = ("import sys, relayflow\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              f"{(*LOWER, 'relayflow', 'temporalio', 'pydantic', 'importlib_metadata')!r}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout.strip() == "['relayflow']"


def test_the_tickets_example_imports_only_relayflow_and_itself() -> None:
    found = []
    for path in sorted((ROOT / "examples").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(ROOT)}: {module}" for module in modules
                      if module.split(".")[0] in {*LOWER, "relayflow", "failpoints"}
                      and module != "relayflow"]
    assert found == []


async def test_a_sandboxed_workflow_reaches_the_api_through_the_passthrough(
        workflow_env: WorkflowEnvironment) -> None:
    published: list[PublishOutcomeInput] = []

    @activity.defn(name="publish_outcome")
    async def publish_outcome(request: PublishOutcomeInput) -> PublishOutcomeResult:
        published.append(request)
        return PublishOutcomeResult(topic=request.topic, partition=0, offset=0,
                                    event_id=str(request.event["event_id"]))

    ticket = TicketOpened(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          ticket_id="T-api", customer_id="c-1", subject="hello")
    queue = f"api-{uuid.uuid4().hex[:8]}"
    async with Worker(workflow_env.client, task_queue=queue, workflows=[PublicApiWorkflow],
                      activities=[publish_outcome]):  # the default runner: sandboxed
        version = await workflow_env.client.execute_workflow(
            PublicApiWorkflow.run, Inbound[TicketOpened](event=ticket, meta=EventMeta(
                event_type=ticket.avro_name, event_id=str(ticket.event_id),
                correlation_id="corr-1", topic="tickets.events")),
            id=f"api-{uuid.uuid4().hex[:8]}", task_queue=queue)
    assert version == relayflow.__version__
    [request] = published
    assert (request.topic, request.event_type) == ("tickets.outcomes", TicketExpired.avro_name)


def test_every_installed_package_ships_py_typed_and_failpoints_is_not_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    installed = [pattern.rstrip("*") for pattern in config["setuptools"]["packages"]["find"][
        "include"]]
    assert sorted(installed) == sorted(("relayflow", *LOWER))
    for package in installed:
        assert (ROOT / package / "py.typed").is_file(), package
        assert "py.typed" in config["setuptools"]["package-data"][package], package
