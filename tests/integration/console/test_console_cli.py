"""``relayflow run --console`` as a process: bridge, worker and the console, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relayflow.config.settings import Settings
from relayflow.console import hash_password
from relayflow.testing import isolated
from tests.integration.console.rig import csrf_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERVING = re.compile(r"console serving on (http://[^\s\"]+)")  # plain or JSON log lines


def _relayflow_command() -> str:
    beside = Path(sys.executable).with_name("relayflow")  # the venv's console script
    found = str(beside) if beside.exists() else shutil.which("relayflow")
    assert found, "the relayflow command is not installed"
    return found


def _output(log: Path) -> str:
    return log.read_text(errors="replace")


async def _url(log: Path, process: subprocess.Popen[bytes]) -> str:
    """The console's URL once the process logs it (bounded; fails with the log)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        found = SERVING.search(_output(log))
        if found:
            return found.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no console URL in the output:\n{_output(log)}")


async def test_relayflow_run_console_serves_the_console_beside_bridge_and_worker(
        relayflow_stack: Settings, tmp_path: Path) -> None:
    settings = isolated(relayflow_stack, "cli-console")
    users = {"ann": {"password_hash": hash_password("pw-ann"), "roles": ["orders-approvers"]}}
    env = {**os.environ, **settings.as_env(), "RELAYFLOW_CONSOLE_PORT": "0",
           "RELAYFLOW_CONSOLE_USERS": json.dumps(users)}
    log = tmp_path / "relayflow-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited for below
            [_relayflow_command(), "run", "--console"], env=env, stdout=output,
            stderr=subprocess.STDOUT)
    try:
        url = await _url(log, process)
        async with httpx.AsyncClient(base_url=url) as client:
            token = csrf_of((await client.get("/login")).text)
            signed = await client.post("/login", data={"username": "ann", "password": "pw-ann",
                                                       "csrf_token": token})
            assert signed.status_code == 303
            inbox = await client.get("/approvals")
            assert inbox.status_code == 200
            assert "Approvals for orders-approvers" in inbox.text
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 60)
        assert code == 0, _output(log)[-4000:]
        assert "bridge consuming" in _output(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
