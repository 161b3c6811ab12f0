"""The "Build your own app" page (docs/building/your-app.md), followed as a new user would.

Every fenced block with a title (```` ```python title="loans/app.py" ````) is a
file of the walk-through's project: they are written into an empty folder
outside the repository. Then every line of the page's ```` ```bash ```` blocks
runs, in the page's order, from that folder, against the session's Kafka and
Temporal (``relayflow_stack``; its addresses reach each process as
``RELAYFLOW_*`` variables). The ``relayflow`` commands run as written; a line
the test does not know fails it, so a step added to the page is a step tested.

Substituted, and why:

* ``pip install -e .``: not run (it would change the shared environment); the
  project folder goes on ``PYTHONPATH``, the alternative the page gives, next
  to the relayflow under test.
* ``export RELAYFLOW_DATA_DIR=...``: the session stack's data folder instead,
  so ``relayflow dev up`` finds the stack running and reuses it.
* ``relayflow dev up``: run as written when the session stack is relayflow's
  local dev stack (``dev up`` is idempotent: it reuses it and creates the
  app's topics; ``RELAYFLOW_CACHE_DIR`` points into the test's folder so the
  user's record of their own dev stack is left alone). On testcontainers or
  an external stack it cannot start or find a stack; the app's topics are
  created instead.
* ``relayflow run``: started in the background (the page's "leave it running");
  stopped with SIGINT, as Ctrl-C, before the page's tests (which the page
  says to do first) or at the end.
* ``pytest``: ``python -m pytest``, this interpreter's.
* ``relayflow dev down``: not run; it would stop the session's stack.
* The page's loan ids ``L-...`` get this run's prefix, so reruns on a kept
  stack never meet the workflows of an earlier run.

The steps whose results arrive asynchronously (``tail``, ``status``, ``dlq
list``, ``verify``) are repeated until they show what the page says, as a user
would run them again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import relayflow
from relayflow.application import Application, load_application
from relayflow.config.settings import Settings
from relayflow.testing import ensure_app_topics
from relayflow.testing.stacks import LOCAL_STACKS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

log = logging.getLogger(__name__)

REPO = Path(relayflow.__file__).resolve().parents[1]
PAGE = REPO / "docs" / "building" / "your-app.md"
RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))
APP_SPEC = "loans.app:APP"
PROJECT = "library"
"""The folder the page's first step changes into."""

PATIENCE = 90.0
"""Seconds a repeated step gets to show its result."""

_FENCE = re.compile(r"^```(?P<language>\w+)(?P<attributes>[^\n]*)\n(?P<body>.*?)^```$",
                    re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'\btitle="(?P<title>[^"]+)"')


def page_files(text: str) -> dict[str, str]:
    """The page's titled blocks: relative path → content."""
    files: dict[str, str] = {}
    for block in _FENCE.finditer(text):
        title = _TITLE.search(block["attributes"])
        if title:
            assert title["title"] not in files, f"{title['title']} is on the page twice"
            files[title["title"]] = block["body"]
    return files


def page_commands(text: str) -> list[str]:
    """Every command line of the page's bash blocks, in order (continuations joined)."""
    commands: list[str] = []
    for block in _FENCE.finditer(text):
        if block["language"] == "bash":
            joined = block["body"].replace("\\\n", " ")
            commands += [line.strip() for line in joined.splitlines() if line.strip()]
    return commands


@dataclass
class Step:
    """One command of the page: its variables (``A=b cmd``) and its words, comments dropped."""

    line: str
    env: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, line: str) -> Step:
        words = shlex.split(line, comments=True)
        step = cls(line)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            step.env[name] = value
        step.words = words
        return step


def test_the_page_is_parsed_into_files_and_steps() -> None:
    text = PAGE.read_text(encoding="utf-8")
    files = page_files(text)
    assert {"pyproject.toml", "loans/app.py", "loans/workflows.py", "loans/activities.py",
            "loans/schemas/LoanRequested.avsc", "tests/test_loans.py"} <= set(files)
    steps = [Step.parse(line) for line in page_commands(text)]
    assert ["relayflow", "run", "--app", APP_SPEC] in [step.words for step in steps]
    assert any(step.env == {"RELAYFLOW_TEST_STACK": "external"} for step in steps)


class Walkthrough:
    """The page's project folder and environment, what it ran, its background ``relayflow run``.

    Args:
        folder: The project folder (the page's files written into it).
        stack: The session's Kafka and Temporal.
    """

    def __init__(self, folder: Path, stack: Settings) -> None:
        self.folder = folder
        self.stack = stack
        self.prefix = uuid.uuid4().hex[:6]
        self.env = {**os.environ, **stack.as_env(),
                    "RELAYFLOW_CACHE_DIR": str(folder.parent / "cache"),
                    "PYTHONPATH": os.pathsep.join((str(folder), str(REPO))),
                    "NO_COLOR": "1", "COLUMNS": "200"}
        self.env.pop("RELAYFLOW_APP", None)  # every command of the page names --app itself
        self.log = folder.parent / "relayflow-run.log"
        self.running: subprocess.Popen[bytes] | None = None
        self.substituted: list[str] = []
        self.sent: list[list[str]] = []
        self.tests: dict[str, int] = {}
        """Tests passed by each pytest step: ``memory``, or its RELAYFLOW_TEST_STACK."""

    def steps(self) -> list[Step]:
        """The page's commands, its loan ids ``L-...`` given this run's prefix."""
        return [Step.parse(re.sub(r"\bL-", f"L-{self.prefix}-", line))
                for line in page_commands(PAGE.read_text(encoding="utf-8"))]

    def follow(self, step: Step) -> None:
        """Take one step of the page, as written or substituted (see the module's docstring)."""
        words = step.words
        if words == ["cd", PROJECT]:
            assert self.folder.is_dir()
        elif words[:2] == ["pip", "install"]:
            self.substituted.append(f"{step.line}: PYTHONPATH={self.folder}")
        elif words[0] == "export":
            name, _, value = words[1].partition("=")
            if name == "RELAYFLOW_DATA_DIR":
                value = str(self.stack.data_dir)
                self.substituted.append(f"{step.line}: the session stack's {value}")
            self.env[name] = value
        elif words[:2] == ["relayflow", "dev"]:
            self.dev(step)
        elif words[:2] == ["relayflow", "run"]:
            self.start_run(step)
        elif words[:2] == ["relayflow", "send"]:
            self.send(step)
        elif words[0] == "relayflow":
            self.until(step, self.expected(step))
        elif words[0] == "pytest":
            self.pytest(step)
        else:
            pytest.fail(f"the page has a step this test does not know: {step.line}")

    def relayflow(self, words: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([RELAYFLOW, *words[1:]], cwd=self.folder, env={**self.env, **env},
                              capture_output=True, text=True, timeout=120, check=False)

    def dev(self, step: Step) -> None:
        if step.words[2] == "down":
            self.substituted.append(f"{step.line}: not run (the session's stack)")
        elif self.stack.data_dir.resolve() in LOCAL_STACKS:
            assert step.words[2] == "up", step.line
            done = self.relayflow(step.words, step.env)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "stack already running" in done.stdout, done.stdout
            assert "loans.events (3)" in done.stdout, done.stdout
        else:
            ensure_app_topics(self.stack, load_application_from(self.folder).all_topics())
            self.substituted.append(f"{step.line}: topics created (not a local dev stack)")

    def send(self, step: Step) -> None:
        """Send as the page says; a start sent again for a closed loan is dropped, and logged."""
        again = step.words in self.sent
        self.sent.append(step.words)
        done = self.relayflow(step.words, step.env)
        assert done.returncode == 0, f"`{step.line}` exit {done.returncode}:\n{done.stderr}"
        assert f"sent loans.{step.words[2]} to loans.events" in done.stdout, done.stdout
        if again:
            loan = json.loads(step.words[step.words.index("--json") + 1])["loan_id"]
            dropped = f"start event dropped: workflow loan-{loan} already closed"
            deadline = time.monotonic() + PATIENCE
            while dropped not in self.run_log():
                assert time.monotonic() < deadline, f"no {dropped!r}:\n{self.run_log()}"
                time.sleep(0.5)

    def expected(self, step: Step) -> Callable[[str], bool]:
        """What a command's output shows once the page's events went through."""
        loan, poison = f"L-{self.prefix}-1", f"L-{self.prefix}-2"
        command = step.words[1]
        if command == "tail":
            return lambda out: "LoanGranted" in out and "LoanClosed" in out and loan in out
        if command == "status":
            return lambda out: f"LoanWorkflow loan-{loan}: completed" in out
        if step.words[1:3] == ["dlq", "list"]:
            return lambda out: "no-route" in out and poison in out
        if command == "verify":
            return lambda out: _verified(out, inputs=len(self.sent))
        pytest.fail(f"the page has a step this test does not know: {step.line}")

    def until(self, step: Step, shows: Callable[[str], bool]) -> None:
        """Run ``step`` again until it exits 0 and its output ``shows`` what the page says."""
        deadline = time.monotonic() + PATIENCE
        while True:
            done = self.relayflow(step.words, step.env)
            output = done.stdout + done.stderr
            if done.returncode == 0 and shows(output):
                log.info("$ %s\n%s", step.line, output)
                return
            if time.monotonic() > deadline:
                pytest.fail(f"`{step.line}` (exit {done.returncode}) never showed what the "
                            f"page says:\n{output}\n--- relayflow run ---\n{self.run_log()}")
            time.sleep(1)

    def pytest(self, step: Step) -> None:
        self.stop_run()  # the page: stop `relayflow run` before the tests
        done = subprocess.run([sys.executable, "-m", *step.words], cwd=self.folder,
                              env={**self.env, **step.env}, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"`{step.line}`:\n{done.stdout}\n{done.stderr}"
        passed = re.search(r"(\d+) passed", done.stdout)
        assert passed, done.stdout
        self.tests[step.env.get("RELAYFLOW_TEST_STACK", "memory")] = int(passed[1])

    def start_run(self, step: Step) -> None:
        with self.log.open("wb") as output:
            self.running = subprocess.Popen(  # stopped in stop_run
                [RELAYFLOW, *step.words[1:]], cwd=self.folder, env={**self.env, **step.env},
                stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + PATIENCE
        while "bridge consuming loans.events" not in self.run_log():
            assert self.running.poll() is None, f"relayflow run ended:\n{self.run_log()}"
            assert time.monotonic() < deadline, f"relayflow run never consumed:\n{self.run_log()}"
            time.sleep(0.5)

    def stop_run(self) -> None:
        if self.running is None:
            return
        process, self.running = self.running, None
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        output = self.run_log()
        assert code == 0, f"relayflow run exited {code} on Ctrl-C:\n{output}"
        assert "Traceback" not in output, output

    def run_log(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


def _verified(output: str, inputs: int) -> bool:
    try:
        report = json.loads(output)
    except ValueError:
        return False
    return bool(report["ok"] and report["open"] == [] and report["dead_lettered"] == 1
                and report["inputs"] == inputs and report["workflows"] == {"LoanWorkflow": 1}
                and report["settled"] == {"LoanClosed": 1})


def write_project(folder: Path) -> Path:
    """The page's files, written into ``folder`` (outside the repository)."""
    assert not folder.resolve().is_relative_to(REPO), "the project must be outside the repo"
    for name, content in page_files(PAGE.read_text(encoding="utf-8")).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return folder


def load_application_from(folder: Path) -> Application:
    """The page's application, imported from its folder (for the topics it needs)."""
    sys.path.insert(0, str(folder))
    try:
        return load_application(APP_SPEC)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.partition(".")[0] == "loans"]:
            del sys.modules[name]


@pytest.fixture
def walkthrough(relayflow_stack: Settings, tmp_path: Path) -> Iterator[Walkthrough]:
    walk = Walkthrough(write_project(tmp_path / PROJECT), relayflow_stack)
    try:
        yield walk
    finally:
        walk.stop_run()


def test_the_build_your_own_app_page_works_as_written(walkthrough: Walkthrough) -> None:
    started = time.monotonic()
    for step in walkthrough.steps():
        walkthrough.follow(step)
        log.info("%6.1f s  %s", time.monotonic() - started, step.line)
    log.info("substituted:\n  %s", "\n  ".join(walkthrough.substituted))
    # Every test of the page's file ran, each in its own way: in memory, or on the stack.
    test_file = page_files(PAGE.read_text(encoding="utf-8"))["tests/test_loans.py"]
    on_kafka = test_file.count("@pytest.mark.kafka")
    assert on_kafka >= 1
    assert walkthrough.tests == {"memory": test_file.count("async def test_") - on_kafka,
                                 "external": on_kafka}, walkthrough.tests


def test_a_model_that_disagrees_with_its_avsc_stops_a_command_as_the_page_shows(
        tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    [shown] = [block["body"] for block in _FENCE.finditer(text)
               if block["language"] == "text" and "is inconsistent" in block["body"]]
    found = re.search(r"(?P<event>loans\.\w+) field (?P<field>\w+): the \.avsc has "
                      r"(?P<renamed>\w+) in its place", shown)
    assert found, shown
    folder = write_project(tmp_path / PROJECT)
    schema = folder / "loans" / "schemas" / f"{found['event'].removeprefix('loans.')}.avsc"
    schema.write_text(schema.read_text(encoding="utf-8").replace(
        f'"{found["field"]}"', f'"{found["renamed"]}"'), encoding="utf-8")
    done = subprocess.run(
        [RELAYFLOW, "send", found["event"], "--app", APP_SPEC, "--json", "{}"], cwd=folder,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(folder), str(REPO)))},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == shown
