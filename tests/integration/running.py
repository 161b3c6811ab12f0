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

__all__ = ["RELAYFLOW", "CodecServerProcess", "codec_server_process", "relayflow_running"]

RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))
"""The ``relayflow`` command of this environment."""


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
