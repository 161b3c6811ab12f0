"""A real S3-compatible server for the claim-check tests: the Versity S3 Gateway.

``github.com/versity/versitygw`` (Apache-2.0) serves the S3 API over a POSIX
folder (each sub-folder a bucket). It is built once with ``go install`` from
the Go module proxy into the cache, like Toxiproxy, and run as a child process.

Why not SeaweedFS or MinIO: MinIO's server is AGPL; SeaweedFS's go.mod has
``replace`` directives, so ``go install module@version`` refuses it and it
would need a source checkout and a much larger build. A cold ``go install`` of
versitygw v1.8.0 took 12:56 wall clock (158 s CPU; 543 MB of modules) on the
loaded 2-core machine this was written on, most of it downloads; cached, it is
instant.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.process import go_install

__all__ = ["VERSITYGW_MODULE", "VERSITYGW_VERSION", "S3Server", "fetch_versitygw", "s3_server"]

VERSITYGW_MODULE = "github.com/versity/versitygw/cmd/versitygw"
VERSITYGW_VERSION = "v1.8.0"


class S3ServerError(RuntimeError):
    """The S3 server could not be built or started."""


def fetch_versitygw(settings: Settings) -> Path:
    """Build versitygw with ``go install`` into the cache, once per version.

    Raises:
        StackError: Go is missing or the build failed.
    """
    [binary] = go_install(settings, "versitygw", VERSITYGW_VERSION, [VERSITYGW_MODULE],
                          purpose=f"build versitygw {VERSITYGW_VERSION} from the Go module proxy")
    return binary


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server with one bucket.

    Attributes:
        endpoint: ``http://127.0.0.1:<port>``.
        bucket: The bucket made for the caller.
        access_key: Root access key.
        secret_key: Root secret key.
    """

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


@contextmanager
def s3_server(settings: Settings, root: Path, bucket: str = "relayflow") -> Iterator[S3Server]:
    """Run versitygw over ``root`` on a free loopback port until the block ends."""
    binary = fetch_versitygw(settings)
    (root / bucket).mkdir(parents=True, exist_ok=True)
    port = free_port()
    secret = secrets.token_hex(16)
    with (root.parent / f"{root.name}.log").open("ab") as log:
        process = subprocess.Popen(
            [str(binary), "--port", f"127.0.0.1:{port}", "--access", "relayflow",
             "--secret", secret, "posix", str(root)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise S3ServerError(f"versitygw did not start (see {root}.log)") from None
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}", bucket, "relayflow", secret)
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    # `make s3` builds it with the rest of what the tests run (a test-only tool).
    print(f"versitygw: {fetch_versitygw(Settings())}")
