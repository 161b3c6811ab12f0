"""A real Confluent-compatible schema registry for tests: Apicurio Registry from Maven Central.

Confluent's own registry is not on Maven Central and Karapace is not on PyPI;
Apicurio Registry is, as a ready-built Quarkus distribution
(``io.apicurio:apicurio-registry-app:<version>:tar.gz:all``), and it answers
the Confluent REST API under ``/apis/ccompat/v7``. Version 2.6 runs on the
machine's Java 17 (3.x is built for Java 21), storing schemas in an in-memory
H2 database: every start is an empty registry.

The archive is fetched once into ``settings.cache_dir`` (``relayflow dev
fetch``); :func:`start_registry` runs it like the stack's other services
(recorded in ``settings.data_dir``, stopped with :func:`stop_registry`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Final

from relayflow.config.settings import Settings
from relayflow.devstack.process import (
    StackError,
    build_once,
    check_port_free,
    recorded_pid,
    service_dir,
    spawn,
    stop_service,
    wait_ready,
)

__all__ = ["APICURIO_VERSION", "CCOMPAT_PATH", "REGISTRY", "fetch_registry", "registry_url",
           "start_registry", "stop_registry"]

log = logging.getLogger(__name__)

REGISTRY: Final = "registry"
APICURIO_VERSION: Final = "2.6.13.Final"
"""The newest Apicurio Registry whose distribution runs on Java 17."""
CCOMPAT_PATH: Final = "/apis/ccompat/v7"
"""Where Apicurio serves the Confluent-compatible API."""
_READY_TIMEOUT: Final = 150.0  # about 35 s alone on 2 cores; more beside Kafka and Temporal
# Quick start over peak speed: a test registry answers a few hundred requests at most.
_JVM_OPTIONS: Final = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k", "-Xmx384m")


def fetch_registry(settings: Settings) -> Path:
    """Fetch the Apicurio Registry distribution from Maven Central into the cache, once.

    Args:
        settings: Supplies ``cache_dir``.

    Returns:
        The runnable jar.
    """
    home = settings.cache_dir / f"apicurio-registry-{APICURIO_VERSION}"
    runner = home / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
    marker = home / ".complete"
    if marker.exists():
        return runner
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log.info("fetching Apicurio Registry %s from Maven Central", APICURIO_VERSION)
    artifact = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
    build_once("mvn", ["-q", "-B", "dependency:copy", f"-Dartifact={artifact}",
                       f"-DoutputDirectory={home}"],
               purpose=f"fetch Apicurio Registry {APICURIO_VERSION} from Maven Central")
    archive = home / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
    archive.unlink()  # 140 MB kept twice otherwise
    if not runner.exists():
        raise StackError(f"the Apicurio Registry archive has no {runner.name}")
    marker.write_text(APICURIO_VERSION)
    return runner


def registry_url(port: int) -> str:
    """The Confluent-compatible API's base URL of a registry started on ``port``."""
    return f"http://127.0.0.1:{port}{CCOMPAT_PATH}"


def start_registry(settings: Settings, port: int) -> str:
    """Start the registry (in-memory storage) unless ours runs; wait until it answers.

    Args:
        settings: Supplies ``cache_dir`` and ``data_dir`` (its log and pid record).
        port: Its HTTP port on 127.0.0.1.

    Returns:
        The base URL of its Confluent-compatible API (:func:`registry_url`).
    """
    url = registry_url(port)
    if recorded_pid(settings, REGISTRY) is not None:
        return url
    check_port_free(REGISTRY, port)
    runner = fetch_registry(settings)
    java = shutil.which("java")
    if java is None:
        raise StackError("java (17 or newer) is needed to run the schema registry")
    home = service_dir(settings, REGISTRY)
    home.mkdir(parents=True, exist_ok=True)
    argv = [java, *_JVM_OPTIONS, f"-Dquarkus.http.port={port}", "-Dquarkus.http.host=127.0.0.1",
            "-jar", str(runner)]
    pid = spawn(settings, REGISTRY, argv, port, runner.name, runner.parent)

    def subjects_answered() -> bool:
        with urllib.request.urlopen(f"{url}/subjects", timeout=2) as response:  # noqa: S310
            return int(response.status) == 200  # noqa: PLR2004 - HTTP OK

    async def answers() -> bool:
        return await asyncio.to_thread(subjects_answered)

    wait_ready(REGISTRY, pid, home / "stdout.log", answers, timeout=_READY_TIMEOUT)
    return url


def stop_registry(settings: Settings) -> bool:
    """Stop the registry this stack started; True if one was running."""
    return stop_service(settings, REGISTRY)
