"""A real Prometheus server for tests: Debian's ``prometheus`` run as a local process.

``make prometheus`` installs the package (``make test`` depends on it). The
server is never the system service: each ``prometheus_server`` writes its own
config, keeps its data in a folder of its own and listens on a free port,
scraping the given targets every second, so tests on one machine never meet.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import stop
from relayflow.devstack import free_port

__all__ = ["SCRAPE_INTERVAL_S", "Prometheus", "find_prometheus", "prometheus_server"]

SCRAPE_INTERVAL_S = 1
"""How often the test server scrapes each target."""

_READY_TIMEOUT_S = 60.0


def find_prometheus() -> str | None:
    """The ``prometheus`` binary (``make prometheus`` installs it), or None."""
    return shutil.which("prometheus") or next(
        (str(p) for p in (Path("/usr/bin/prometheus"),) if p.is_file()), None)


@dataclass(frozen=True)
class Prometheus:
    """A running server.

    Attributes:
        url: Its base URL (``http://127.0.0.1:<port>``).
        log: Its log file.
    """

    url: str
    log: Path

    def _get(self, path: str, **query: str) -> object:
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's series: (labels, value) each.

        Raises:
            RuntimeError: Prometheus refused the query (its message).
        """
        body = self._get("/api/v1/query", query=promql)
        assert isinstance(body, dict)
        if body.get("status") != "success":
            raise RuntimeError(f"{promql}: {body.get('error')}")
        return [(series["metric"], float(series["value"][1]))
                for series in body["data"]["result"]]

    def value(self, promql: str) -> float | None:
        """The value of a query that yields one series, or None when it yields none."""
        found = self.query(promql)
        if not found:
            return None
        if len(found) > 1:
            raise AssertionError(f"{promql}: {len(found)} series, expected one: {found}")
        return found[0][1]

    def targets_up(self) -> dict[str, str]:
        """Scrape URL → health (``up``, ``down``, ``unknown``) of every active target."""
        body = self._get("/api/v1/targets")
        assert isinstance(body, dict)
        return {target["scrapeUrl"]: target["health"]
                for target in body["data"]["activeTargets"]}


def config(jobs: Mapping[str, Sequence[str]]) -> str:
    """A Prometheus config (YAML is a superset of JSON) scraping ``host:port`` targets by job."""
    return json.dumps({
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}
                           for job, targets in jobs.items()],
    }, indent=2)


@contextlib.contextmanager
def prometheus_server(folder: Path, jobs: Mapping[str, Sequence[str]]) -> Iterator[Prometheus]:
    """A Prometheus process scraping ``jobs`` (job name → ``host:port`` targets) every second.

    Args:
        folder: Its config, data and log go here.
        jobs: What to scrape (each target's ``/metrics``).

    Yields:
        The running server, once it reports ready; it is stopped afterwards.

    Raises:
        FileNotFoundError: No ``prometheus`` binary (run ``make prometheus``).
        RuntimeError: It ended or did not get ready; its log's tail says why.
    """
    binary = find_prometheus()
    if binary is None:
        raise FileNotFoundError("no prometheus binary: run `make prometheus` "
                                "(apt-get install -y prometheus)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(config(jobs), encoding="utf-8")
    log = folder / "prometheus.log"
    address = f"127.0.0.1:{free_port()}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={address}",
             "--log.level=warn"], stdout=out, stderr=subprocess.STDOUT)
    server = Prometheus(f"http://{address}", log)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        stop(process, grace=30)


def _wait_ready(server: Prometheus, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus ended ({process.returncode}): "
                               f"{server.log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as answer:
            if answer.status == 200:  # noqa: PLR2004 - HTTP OK
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"prometheus not ready after {_READY_TIMEOUT_S:g}s: "
                               f"{server.log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
