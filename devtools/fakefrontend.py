"""A stand-in for Temporal's frontend that is never the bottleneck, for benchmarks only.

Every throughput figure measured against a real Temporal server on the
benchmark machine is bounded by that server. To measure what the bridge
itself can do, ``bench/fakefrontend`` (Go, ``go.temporal.io/api``'s generated
WorkflowService) answers the calls a client makes (system info and namespace
at connect; start, signal, signal-with-start, update, update-with-start,
cancel) at once with valid responses, and counts them. It stores nothing:
tests of behaviour never use it, only ``bench/``.

It is built from the project's own files (``bench/fakefrontend``: ``go.mod``,
``go.sum``, ``main.go``) with modules from the Go module proxy, once per
content of those files, into the cache (like Toxiproxy), and run as a child
process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from relayflow.config.settings import Settings
from relayflow.devstack import build_once, free_port

__all__ = ["SOURCE", "FakeFrontend", "FakeFrontendError", "fetch_fakefrontend"]

SOURCE = Path(__file__).resolve().parent.parent / "bench" / "fakefrontend"
_FILES = ("go.mod", "go.sum", "main.go")


class FakeFrontendError(RuntimeError):
    """The stand-in frontend could not be built or started."""


def fetch_fakefrontend(settings: Settings) -> Path:
    """Build the stand-in frontend into the cache, once per content of its source files.

    Returns:
        The server binary.

    Raises:
        StackError: Go is missing or the build failed.
        FakeFrontendError: The build left no binary.
    """
    digest = hashlib.sha256()
    for name in _FILES:
        digest.update(name.encode() + b"\0" + (SOURCE / name).read_bytes())
    binary = settings.cache_dir / f"fakefrontend-{digest.hexdigest()[:12]}" / "fakefrontend"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    build_once("go", ["build", "-trimpath", "-mod=readonly", "-o", str(binary), "."],
               purpose="build the stand-in Temporal frontend (bench/fakefrontend)",
               cwd=SOURCE, env={"CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"})
    if not binary.exists():
        raise FakeFrontendError(f"go build left no {binary}")
    return binary


class FakeFrontend:
    """A stand-in frontend process of our own on free ports, stopped (by pid) on exit.

    Args:
        settings: Supplies the cache folder of the binary.
        log: Where the server's output goes.

    Attributes:
        address: ``host:port`` of its WorkflowService, for ``temporal_address``.
    """

    def __init__(self, settings: Settings, log: Path) -> None:
        self._binary = fetch_fakefrontend(settings)
        self._log = log
        self.address = f"127.0.0.1:{free_port()}"
        self._http = f"127.0.0.1:{free_port()}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        """Start the server and wait until it answers."""
        with self._log.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(self._binary), "-grpc", self.address, "-http", self._http],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.counts()
            except OSError:
                if self._proc.poll() is not None:
                    break
                time.sleep(0.05)
            else:
                return self
        self.__exit__(None, None, None)
        raise FakeFrontendError(f"the stand-in frontend did not answer; see {self._log}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        """Kill the server (by pid)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    @property
    def pid(self) -> int:
        """The server's process id (to read its CPU time, say)."""
        assert self._proc is not None, "not started"
        return self._proc.pid

    def counts(self, *, reset: bool = False) -> dict[str, int]:
        """The calls received so far, by method, and ``WorkflowsStarted`` (any call that starts).

        Args:
            reset: Zero the counters after reading them.
        """
        request = urllib.request.Request(f"http://{self._http}/counts",
                                         method="DELETE" if reset else "GET")
        with urllib.request.urlopen(request, timeout=10) as answer:
            counted: dict[str, int] = json.loads(answer.read())
        return counted


if __name__ == "__main__":
    # `make fakefrontend` (and `make bench`) build it: a benchmark-only tool.
    print(f"fake frontend: {fetch_fakefrontend(Settings())}")
