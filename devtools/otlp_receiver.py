"""A minimal OTLP trace receiver (gRPC) in a process of its own: accepts spans and counts them.

What a benchmark or a test exports spans to when it must show that export
really happened, without running a collector: OTLP/gRPC's ``TraceService``
(``opentelemetry-proto``'s messages on ``grpcio``), answering every
``Export`` with success after adding its spans to a count. The count is
written to a file after each request (replaced atomically), so the parent
reads it at any time; it is written before the answer goes out, so once an
exporter's ``force_flush`` returns, the count includes what it sent.

    python -m devtools.otlp_receiver --count-file spans.txt   # prints its port, then serves
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from devtools.processes import stop

__all__ = ["OtlpReceiver", "otlp_receiver"]

_READY_TIMEOUT_S = 30.0
_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class _Counting:
    def __init__(self, count_file: Path) -> None:
        self._file = count_file
        self._spans = 0
        self._lock = threading.Lock()
        self._write()

    def _write(self) -> None:
        part = self._file.with_suffix(".part")
        part.write_text(str(self._spans), encoding="utf-8")
        part.replace(self._file)

    def export(self, request: ExportTraceServiceRequest,
               _: grpc.ServicerContext) -> ExportTraceServiceResponse:
        spans = sum(len(scope.spans) for resource in request.resource_spans
                    for scope in resource.scope_spans)
        with self._lock:
            self._spans += spans
            self._write()
        return ExportTraceServiceResponse()


@dataclass(frozen=True)
class OtlpReceiver:
    """A running receiver.

    Attributes:
        endpoint: ``http://127.0.0.1:<port>``, for the OTLP gRPC exporter (insecure).
        count_file: Where the count of spans received is kept.
    """

    endpoint: str
    count_file: Path

    def spans(self) -> int:
        """Spans received so far."""
        return int(self.count_file.read_text(encoding="utf-8"))


@contextlib.contextmanager
def otlp_receiver(folder: Path) -> Iterator[OtlpReceiver]:
    """An OTLP/gRPC receiver process on a free local port, stopped afterwards.

    Args:
        folder: Its count file and log go here.

    Raises:
        RuntimeError: It ended or did not say its port in time; its log says why.
    """
    folder.mkdir(parents=True, exist_ok=True)
    count_file, log = folder / "otlp-spans.txt", folder / "otlp-receiver.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.otlp_receiver", "--count-file", str(count_file)],
            stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert process.stdout is not None
        ready = threading.Timer(_READY_TIMEOUT_S, process.kill)  # a silent receiver ends
        ready.start()
        try:
            port = process.stdout.readline().strip()
        finally:
            ready.cancel()
        if not port.isdigit():
            raise RuntimeError(f"OTLP receiver did not start: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        yield OtlpReceiver(f"http://127.0.0.1:{port}", count_file)
    finally:
        stop(process, grace=10)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; print the bound port first."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count-file", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="0: a free one (printed)")
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    counting = _Counting(args.count_file)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(_SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(
            counting.export, request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString)})])
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(port, flush=True)  # the parent reads it
    stop.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
