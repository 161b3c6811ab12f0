"""Processes of the dev stack: start, record, wait for, and stop them.

Each process started is recorded (pid, port, command line) in the data folder,
so a later call reuses a running service and stops only what it started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from relayflow.config.settings import SettingError, Settings

__all__ = ["READY_TIMEOUT", "STOP_GRACE", "StackError", "build_once", "check_port_free",
           "free_port", "go_install", "pid_file", "port_open", "quiet", "recorded_pid", "run_sync",
           "service_dir", "spawn", "stop_service", "wait_ready"]

T = TypeVar("T")

READY_TIMEOUT = 90.0
"""Seconds a service may take to answer after it was started."""
STOP_GRACE = 20.0
"""Seconds a stopped service may take to exit after SIGTERM before it is killed."""


class StackError(RuntimeError):
    """The dev stack could not be brought to the requested state."""


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, even when called inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Inside a loop (async tests): a private loop in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


_FREE_PORTS = range(11000, 17000)
"""Where ``free_port`` looks: below the kernel's ephemeral range (32768 up, by
default), which outgoing connections draw from, and clear of the fixed ports of
the dev, test and bench stacks."""
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a service to bind soon.

    Not one the kernel picks itself (a bind to port 0): that comes from the
    ephemeral range, where any outgoing connection may take it before the
    service binds it (a test's second broker once failed so). A random port of
    ``_FREE_PORTS`` that binds now, never the same twice in one process.
    """
    for _ in range(1000):
        port = random.choice(_FREE_PORTS)  # noqa: S311 - not a secret, only spread
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise StackError(f"no free port in {_FREE_PORTS.start}-{_FREE_PORTS.stop - 1}")


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_file(settings: Settings, service: str) -> Path:
    """Where a service's pid, port and command line are recorded."""
    return settings.data_dir / f"{service}.pid.json"


def service_dir(settings: Settings, service: str) -> Path:
    """A service's own folder in the data folder."""
    return (settings.data_dir / service).resolve()


def _alive(pid: int, marker: str) -> bool:
    """The pid runs and is still the process we started (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def recorded_pid(settings: Settings, service: str) -> int | None:
    """The pid of the service this stack started, if it still runs (a stale record is removed)."""
    path = pid_file(settings, service)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    if _alive(pid, str(record["marker"])):
        return pid
    path.unlink(missing_ok=True)  # stale: the process is gone or the pid was reused
    return None


# Children started by this process: polling them is exact while they start up
# (the cmdline marker can be briefly unreadable while a launcher re-execs itself).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(settings: Settings, service: str, argv: list[str], port: int,
          marker: str, cwd: Path, *, user: str | None = None) -> int:
    """Start a service in its own session, logging to its folder, and record it.

    ``user``: run it as that user (we must be root), for a server that refuses root.

    Returns:
        Its pid.
    """
    log_path = service_dir(settings, service) / "stdout.log"
    with log_path.open("ab") as out:
        # A new session detaches it from our terminal, so Ctrl-C on the CLI keeps it.
        process = subprocess.Popen(  # noqa: S603 - argv built from our own settings
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, user=user, group=user,
            extra_groups=None if user is None else [],
        )
    _CHILDREN[process.pid] = process
    record = {"pid": process.pid, "port": port, "marker": marker, "argv": argv,
              "started_at": time.time()}
    pid_file(settings, service).write_text(json.dumps(record, indent=2))
    return process.pid


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(service: str, pid: int | None, log_path: Path | None,
               probe: Callable[[], Awaitable[bool]], timeout: float = READY_TIMEOUT) -> None:
    """Block until ``probe`` answers True.

    Raises:
        StackError: The process exited, or it did not answer in ``timeout`` seconds
            (with the tail of its log).
    """
    # pid None: a service started elsewhere (a container); only its answer counts.
    process = _CHILDREN[pid] if pid is not None else None

    def tail() -> str:
        return f"; log tail:\n{_tail(log_path)}" if log_path else ""

    async def poll() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise StackError(f"{service} exited while starting{tail()}")
            try:
                if await probe():
                    return
            except SettingError:
                raise  # waiting does not fix a bad setting
            except Exception:  # noqa: BLE001, S110 - not answering yet is what we wait out
                pass
            await asyncio.sleep(0.3)
        raise StackError(f"{service} not ready after {timeout:.0f}s{tail()}")

    run_sync(poll)


def stop_service(settings: Settings, service: str, *, grace: float = STOP_GRACE) -> bool:
    """Stop a recorded service (SIGTERM, then SIGKILL); True if one was running.

    Args:
        settings: Where the service is recorded.
        service: Its name.
        grace: Seconds it may take to exit after SIGTERM before it is killed;
            0 kills it at once (a throwaway service whose clean shutdown is of no use).
    """
    pid = recorded_pid(settings, service)
    if pid is None:
        return False
    if grace > 0:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        _wait_gone(pid, grace)
    if Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_gone(pid, STOP_GRACE)  # gone and reaped: its ports are free again
    pid_file(settings, service).unlink(missing_ok=True)
    return True


def _wait_gone(pid: int, timeout: float) -> None:
    """Wait (bounded) until ``pid`` exited, reaping it when it is our child."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        _reap(pid)
        if time.monotonic() >= deadline or not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    # A child of this process stays a zombie (and in /proc) until waited for.
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def check_port_free(service: str, port: int) -> None:
    """Raise ``StackError`` when another process already listens on ``port``."""
    if port_open(port):
        raise StackError(
            f"port {port} for {service} is taken by a process relayflow did not start; "
            f"stop it or choose another port (RELAYFLOW_*_PORT)"
        )


def build_once(tool: str, args: list[str], *, purpose: str, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> None:
    """Run a build tool (``mvn``, ``go``) that fills the cache.

    Args:
        tool: The executable, looked up on PATH.
        args: Its arguments.
        purpose: What it is needed for, for the error messages.
        cwd: Working folder.
        env: Extra environment variables.

    Raises:
        StackError: The tool is missing, or failed (with the tail of its output).
    """
    found = shutil.which(tool)
    if found is None:
        raise StackError(f"{tool} is needed once to {purpose}; install it")
    result = subprocess.run(  # noqa: S603
        [found, *args], cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise StackError(f"{tool} could not {purpose}:\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")


def go_install(settings: Settings, name: str, version: str, packages: Sequence[str], *,
               purpose: str) -> list[Path]:
    """Build Go commands with ``go install`` from the module proxy into the cache, once per version.

    Args:
        settings: Where the cache is (``<cache>/<name>-<version>``).
        name: The tool, for the cache folder.
        version: The module version every package is built at.
        packages: Import paths of the commands, without the version.
        purpose: What they are built for, for the error messages.

    Returns:
        The binaries, one per package, named as ``go install`` names them (the
        import path's last element).

    Raises:
        StackError: Go is missing, or the build failed or left a binary out.
    """
    home = settings.cache_dir / f"{name}-{version}"
    binaries = [home / package.rsplit("/", 1)[-1] for package in packages]
    if all(binary.exists() for binary in binaries):
        return binaries
    home.mkdir(parents=True, exist_ok=True)
    build_once("go", ["install", *(f"{package}@{version}" for package in packages)],
               purpose=purpose, env={"GOBIN": str(home), "CGO_ENABLED": "0"})
    missing = [str(binary) for binary in binaries if not binary.exists()]
    if missing:
        raise StackError(f"go install left no {' or '.join(missing)}")
    return binaries


@contextlib.contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger while a service starts (every refused connection is expected)."""
    # While a broker starts, every refused connection is expected, not an error to show.
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
