"""Toxiproxy for fault tests and benchmarks: latency, cut and black-holed connections.

There is no kernel traffic shaping here, so a proxy stands between a client
and a service and its HTTP API injects the fault ("toxic"). The server is the
Go module ``github.com/Shopify/toxiproxy/v2``, built once with ``go install``
into the cache (like the Kafka jars), and run as a child process.

For Temporal (gRPC over one TCP connection) a client pointed at the proxy's
listen address sees whatever the toxics do. For Kafka that is not enough:
clients connect to the address the broker advertises, so the proxy listens on
the advertised port (``kafka_advertised_port``) and forwards to the broker's
real one, and every client of that broker goes through it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.process import go_install

__all__ = ["TOXIPROXY_MODULE", "TOXIPROXY_VERSION", "Proxy", "Toxiproxy", "fetch_toxiproxy"]

TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
TOXIPROXY_VERSION = "v2.5.0"


class ToxiproxyError(RuntimeError):
    """Toxiproxy could not be built, started or driven."""


def fetch_toxiproxy(settings: Settings) -> Path:
    """Build the Toxiproxy server with ``go install`` into the cache, once per version.

    Returns:
        The server binary.

    Raises:
        StackError: Go is missing or the build failed.
    """
    [binary] = go_install(settings, "toxiproxy", TOXIPROXY_VERSION, [TOXIPROXY_MODULE],
                          purpose=f"build Toxiproxy {TOXIPROXY_VERSION} from the Go module proxy")
    return binary


class Proxy:
    """One proxy: ``listen`` forwards to ``upstream`` until toxics say otherwise."""

    def __init__(self, server: Toxiproxy, name: str, listen: str) -> None:
        self._server = server
        self.name = name
        self.listen = listen

    def latency(self, ms: int, *, jitter_ms: int = 0, stream: str = "downstream") -> None:
        """Delay every chunk on ``stream`` (``upstream``: client→service) by ``ms``."""
        self._toxic(f"latency_{stream}", "latency", stream,
                    {"latency": ms, "jitter": jitter_ms})

    def black_hole(self, stream: str = "upstream") -> None:
        """Swallow data on ``stream`` and never answer (a hung connection, not a refused one)."""
        self._toxic(f"timeout_{stream}", "timeout", stream, {"timeout": 0})

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self._server.request("POST", f"/proxies/{self.name}", {"enabled": False})

    def restore(self) -> None:
        """Remove every toxic and accept connections again."""
        for toxic in self._server.request("GET", f"/proxies/{self.name}/toxics"):
            self._server.request("DELETE", f"/proxies/{self.name}/toxics/{toxic['name']}")
        self._server.request("POST", f"/proxies/{self.name}", {"enabled": True})

    def _toxic(self, name: str, kind: str, stream: str, attributes: dict[str, int]) -> None:
        self._server.request("POST", f"/proxies/{self.name}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": 1.0,
            "attributes": attributes})


class Toxiproxy:
    """A Toxiproxy server process of our own, stopped (by pid) on exit.

    Args:
        settings: Supplies the cache folder of the binary.
        log: Where the server's output goes.
    """

    def __init__(self, settings: Settings, log: Path) -> None:
        self._binary = fetch_toxiproxy(settings)
        self._log = log
        self._port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        """Start the server and wait until its API answers."""
        with self._log.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(self._binary), "-host", "127.0.0.1", "-port", str(self._port)],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.request("GET", "/proxies")
            except (OSError, ToxiproxyError):
                time.sleep(0.1)
            else:
                return self
        self.__exit__(None, None, None)
        raise ToxiproxyError(f"toxiproxy did not answer on port {self._port}; see {self._log}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        """Kill the server (by pid); its proxies go with it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def proxy(self, name: str, upstream: str, listen: str | None = None) -> Proxy:
        """Create a proxy to ``upstream`` (``host:port``) on ``listen`` (default: a free port)."""
        listen = listen or f"127.0.0.1:{free_port()}"
        self.request("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream,
                                          "enabled": True})
        return Proxy(self, name, listen)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the HTTP API; returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._port}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as error:
            raise ToxiproxyError(f"{method} {path}: {error.code} {error.read()[:300]!r}") from error
        return json.loads(payload) if payload.strip() else None


if __name__ == "__main__":
    # `make kafka` builds it with the rest of what the tests run (a dev-only tool).
    print(f"Toxiproxy: {fetch_toxiproxy(Settings())}")
