"""relayflow itself (bridge and worker, the codec server) running on the real stack."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.reference.app import APP
from relayflow.testing.system import running_system

__all__ = ["RELAYFLOW", "CodecServerProcess", "WorkerOutput", "codec_server_process",
           "relayflow_running", "worker_output"]

RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))
"""The ``relayflow`` command of this environment."""
_CORE_AT_TRACE = """
import sys
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
    filter=TelemetryFilter(core_level="TRACE", other_level="TRACE")))))
from relayflow.cli.main import app
app(sys.argv[1:], prog_name="relayflow")
"""
"""``relayflow`` with the Temporal core (Rust) logging everything it can, to standard output."""


@asynccontextmanager
async def relayflow_running(stack: Settings, **update: Any) -> AsyncIterator[Settings]:
    """The reference application's bridge and worker, run as ``relayflow_system`` runs them.

    On their own task queue and consumer group, the group at the input topics'
    current end (``relayflow.testing.system.running_system``).

    Args:
        stack: The session's Kafka and Temporal.
        **update: Further settings (e.g. ``schema_registry_url``).
    """
    async with running_system(stack, APP, **update) as settings:
        yield settings


@dataclass
class CodecServerProcess:
    """A running ``relayflow codec-server``.

    Attributes:
        url: Its endpoint.
        output: Everything it wrote to stderr (complete once stopped).
        returncode: Its exit status once stopped.
    """

    url: str
    output: str
    returncode: int | None = None


@asynccontextmanager
async def codec_server_process(settings: Settings,
                               **env: str) -> AsyncIterator[CodecServerProcess]:
    """The real ``relayflow codec-server`` process, from when it says where it listens.

    Args:
        settings: Its settings (the keys, the token), as environment variables.
        **env: Variables over those.

    Yields:
        The process's endpoint; SIGTERM stops it afterwards.
    """
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        RELAYFLOW, "codec-server", "--port", str(port),
        env={**os.environ, **settings.as_env(), **env}, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    lines: list[str] = []
    while "codec server on" not in (lines[-1] if lines else ""):
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        assert line, f"codec-server ended: {''.join(lines)}"
        lines.append(line.decode())
    drain = asyncio.create_task(process.stderr.read())  # keeps its log pipe flowing
    server = CodecServerProcess(f"http://127.0.0.1:{port}", "".join(lines))
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        server.returncode = await asyncio.wait_for(process.wait(), 30)
        server.output += (await drain).decode()


@dataclass(frozen=True)
class WorkerOutput:
    """What a ``relayflow worker`` process wrote.

    Attributes:
        stdout: Its standard output: the Temporal core's log (the Rust core writes there).
        stderr: Its standard error: relayflow's own log.
    """

    stdout: bytes
    stderr: bytes


async def worker_output(settings: Settings, folder: Path) -> WorkerOutput:
    """Run ``relayflow worker`` at DEBUG, the Temporal core at TRACE, until it polls; stop it.

    The process is the real command; only the core's log filter is raised (the
    SDK's default runtime, which the worker uses when it exports no SDK
    metrics). It runs until it logs that it polls its task queue, then a
    second longer, then SIGTERM stops it.

    Args:
        settings: Its settings (as environment variables).
        folder: Where its output files go.
    """
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RELAYFLOW_")},
           **settings.as_env(), "RELAYFLOW_LOG_LEVEL": "DEBUG",
           "RELAYFLOW_WORKER_HTTP_PORT": "-1", "RELAYFLOW_TEMPORAL_METRICS_PORT": "-1"}
    out, err = folder / "worker.stdout", folder / "worker.stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CORE_AT_TRACE, "worker", env=env, stdout=stdout,
            stderr=stderr)
    try:
        async with asyncio.timeout(60):
            while b"worker polling task queue" not in err.read_bytes():
                assert process.returncode is None, err.read_text(errors="replace")
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0, err.read_text(errors="replace")
    return WorkerOutput(out.read_bytes(), err.read_bytes())
