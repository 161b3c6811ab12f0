"""CLI commands that need no running service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayflow.cli.dev import STACK_RECORD, record_stack, stack_settings
from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.reference.activities.store import Store

EVERY_COMMAND_OF_AN_APP = [
    ["worker"], ["bridge"], ["run"], ["approvals"], ["decide", "O-1", "approve", "--by", "x"],
    ["batch-failures", "b1"], ["verify"], ["demo", "--no-console"], ["asyncapi"],
    ["send", "OrderPlaced", "--json", "{}"], ["tail", "orders.events"], ["status", "O-1"],
    ["top", "--once"], ["console"], ["dlq", "list"], ["dlq", "show", "orders.events.dlq", "0", "0"],
    ["dlq", "replay", "orders.events", "k"], ["dlq", "release", "orders.events", "k"],
    ["dev", "up"], ["endings", "sweep"],
]
"""Every command that serves an application, with the arguments it needs besides ``--app``."""


def test_batch_failures_lists_every_failed_item(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = tmp_path / "store.db"
    Store(store_path, card_limit_cents=1).record_failures(
        "b1", 0, [("bad-0", "invalid"), ("bad-9", "timed out")])
    monkeypatch.setenv("RELAYFLOW_STORE_PATH", str(store_path))
    result = CliRunner().invoke(app, ["batch-failures", "b1"])
    assert result.exit_code == 0, result.output
    assert "bad-0\tinvalid" in result.stdout
    assert "bad-9\ttimed out" in result.stdout
    assert "2 failed item(s) in batch b1" in result.stderr


@pytest.mark.parametrize("command", ["bridge", "worker", "run"])
@pytest.mark.parametrize(("spec", "why"), [
    ("no_such_package.app:APP", "No module named 'no_such_package'"),
    ("relayflow.reference:ROUTES", "not a relayflow Application"),
    ("relayflow.reference", "expected 'module:attribute'"),
])
def test_a_bad_application_is_refused_before_anything_connects(command: str, spec: str,
                                                               why: str) -> None:
    result = CliRunner().invoke(app, [command, "--app", spec])
    assert result.exit_code == 2, result.output
    assert why in _unboxed(result.output)


def test_relayflow_app_names_the_application_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_APP", "relayflow.reference:WORKFLOWS")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "not a relayflow Application" in _unboxed(result.output)


def _unboxed(output: str) -> str:
    # Typer prints errors in a box whose lines may break a message anywhere.
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize("command", EVERY_COMMAND_OF_AN_APP, ids=" ".join)
def test_every_command_refuses_an_application_it_cannot_load_in_one_line(
        command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing may connect first: every address points at a closed port.
    monkeypatch.setenv("RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("RELAYFLOW_TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    result = CliRunner().invoke(app, [*command, "--app", "no_such_package.app:APP"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [(
        "relayflow: --app / RELAYFLOW_APP no_such_package.app:APP: "
        "No module named 'no_such_package'")]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["dev", "up"], ["dlq", "list"], ["send", "OrderPlaced"]],
                         ids=" ".join)
def test_relayflow_app_naming_no_application_is_refused_in_one_line(
        command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYFLOW_APP", "relayflow.reference:ROUTES")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("relayflow: --app / RELAYFLOW_APP relayflow.reference:ROUTES: ")
    assert "not a relayflow Application" in line


def test_starting_the_cli_loads_no_client_library_nor_any_command_s_work() -> None:
    # `relayflow --help` and tab completion import the CLI: it must stay cheap.
    heavy = ["temporalio", "faststream", "aiohttp", "relayflow.runtime",
             "relayflow.devstack", "relayflow.application", "relayflow.console.app"]
    probe = ("import json, sys; import relayflow; before = set(sys.modules); "
             "import relayflow.cli.main; "
             f"print(json.dumps([m for m in {heavy!r} if m in sys.modules and m not in before]))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert json.loads(loaded.stdout) == []


STACK_VARIABLES = ("RELAYFLOW_DATA_DIR", "RELAYFLOW_KAFKA_PORT", "RELAYFLOW_TEMPORAL_PORT",
                   "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS", "RELAYFLOW_TEMPORAL_ADDRESS")


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no stack of its own, and a cache folder of the test's own."""
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAYFLOW_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "loans-app"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _started_stack(tmp_path: Path) -> Settings:
    """What `dev up` records, run from another folder on ports of its own."""
    stack = Settings(data_dir=tmp_path / "repo" / ".relayflow", kafka_port=free_port(),
                     temporal_port=free_port(),
                     kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    stack.data_dir.mkdir(parents=True)
    record_stack(stack)
    return stack


def test_dev_commands_find_the_stack_dev_up_started_in_another_folder(
        elsewhere: Path, tmp_path: Path) -> None:
    stack = _started_stack(tmp_path)
    assert (tmp_path / "cache" / STACK_RECORD).exists()

    found = stack_settings()
    assert found.data_dir == stack.data_dir.resolve()
    assert (found.kafka_port, found.temporal_port, found.kafka_bootstrap_servers) == \
        (stack.kafka_port, stack.temporal_port, stack.kafka_bootstrap_servers)
    shown = CliRunner().invoke(app, ["dev", "status"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    assert f"relayflow dev stack in {stack.data_dir.resolve()}" in " ".join(shown.stdout.split())
    assert f"127.0.0.1:{stack.kafka_port}" in shown.stdout


def test_the_working_folder_s_stack_and_explicit_settings_win_over_the_recorded_one(
        elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _started_stack(tmp_path)
    monkeypatch.setenv("RELAYFLOW_KAFKA_PORT", "19092")
    assert (stack_settings().data_dir, stack_settings().kafka_port) == \
        (stack.data_dir.resolve(), 19092)
    (elsewhere / ".relayflow").mkdir()
    assert stack_settings().data_dir == Path(".relayflow")
    monkeypatch.setenv("RELAYFLOW_DATA_DIR", str(tmp_path / "explicit"))
    assert stack_settings().data_dir == tmp_path / "explicit"


def test_a_recorded_stack_whose_folder_is_gone_is_forgotten(elsewhere: Path,
                                                           tmp_path: Path) -> None:
    stack = _started_stack(tmp_path)
    stack.data_dir.rmdir()
    assert stack_settings().data_dir == Path(".relayflow")


def test_a_recorded_real_server_stack_is_shown_as_one_with_no_web_ui(
        elsewhere: Path, tmp_path: Path) -> None:
    # `dev up --temporal server` records its choice, so `dev status` elsewhere knows it.
    stack = _started_stack(tmp_path).model_copy(update={"temporal_dev_server": "server"})
    record_stack(stack)
    assert stack_settings().temporal_dev_server == "server"
    shown = CliRunner().invoke(app, ["dev", "status"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    assert "the real server (PostgreSQL), no web UI" in shown.stdout
    assert "Temporal UI" not in shown.stdout


def test_sweeping_endings_of_an_application_without_endings_says_so_before_connecting() -> None:
    # Temporal at an address nothing listens on: the refusal comes first.
    result = CliRunner().invoke(app, ["endings", "sweep", "--app", "examples.tickets.app:APP"],
                                env={"RELAYFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert result.exit_code == 1
    assert result.output == ("relayflow: application 'tickets' declares no endings: "
                             "nothing to sweep\n")
