"""Attacks on the codec server, each performed against the real ``relayflow codec-server`` process.

Every request goes over a real socket to the process; what the server holds
(its sockets, its memory) is read from ``/proc/<pid>``. The server runs with
small limits so the attacks are quick: at most ``MAX_CONNECTIONS``
connections, ``TIMEOUT`` seconds per request, ``MAX_BODY`` bytes of body.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from relayflow.devstack import free_port
from relayflow.temporal.payload_codec import EncryptionCodec, new_key_entry, parse_keys

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))
KEYS = new_key_entry("k-sec")
CODEC = EncryptionCodec(parse_keys(KEYS, source="test"))
TOKEN = secrets.token_hex(24)
UI = "http://localhost:8233"
MAX_CONNECTIONS = 32
TIMEOUT = 3.0
MAX_BODY = 1024 * 1024
SECRET = "customer-c-4711"
ENCRYPTED = json_format.MessageToJson(Payloads(payloads=CODEC.encrypt(
    [Payload(metadata={"encoding": b"json/plain"}, data=f'{{"c": "{SECRET}"}}'.encode())]),
)).encode()
MiB = 1024 * 1024


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    own_sockets: int = 0
    """Sockets it holds with no client (the listening one, the event loop's wake-up pair)."""

    @property
    def output(self) -> str:
        return self.log.read_text()

    def rss(self, measure: str = "VmRSS") -> int:
        """Resident memory of the process in bytes (``VmHWM``: the peak since ``reset_peak``)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith(f"{measure}:")]
        return int(line.split()[1]) * 1024

    @contextmanager
    def peak_growth(self) -> Iterator[list[int]]:
        """Yields a list that holds, after the block, how far the peak RSS rose above the start."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
        before, growth = self.rss(), list[int]()
        yield growth
        growth.append(self.rss("VmHWM") - before)

    def sockets(self) -> int:
        """Sockets the process holds open (its listening socket included)."""
        fds = Path(f"/proc/{self.process.pid}/fd")
        return sum(1 for fd in fds.iterdir()
                   if os.readlink(fd).startswith("socket:"))  # noqa: PTH115


def _env(**settings: str) -> dict[str, str]:
    """This environment without any RELAYFLOW_* of its own, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYFLOW_")}
    return {**env, "PYTHONPATH": str(ROOT), "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS": KEYS,
            "RELAYFLOW_CODEC_SERVER_ORIGINS": UI,
            "RELAYFLOW_CODEC_SERVER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "RELAYFLOW_CODEC_SERVER_REQUEST_TIMEOUT_SECONDS": str(TIMEOUT),
            "RELAYFLOW_CODEC_SERVER_MAX_BODY_BYTES": str(MAX_BODY), **settings}


def _start(log: Path, port: int, *args: str, **settings: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([RELAYFLOW, "codec-server", "--port", str(port), *args],
                                env=_env(**settings), stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def running(tmp_path: Path, *args: str, **settings: str) -> Iterator[Server]:
    """The codec server process, from when it says where it listens until SIGTERM."""
    port = free_port()
    log = tmp_path / f"codec-server-{port}.log"
    process = _start(log, port, *args, **settings)
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while "codec server on" not in server.output:
            assert process.poll() is None, server.output
            assert time.monotonic() < deadline, server.output
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(30)


def refused_start(tmp_path: Path, *args: str, **settings: str) -> tuple[int, str]:
    """Exit status and output of a codec server that must not start; nothing may listen."""
    port = free_port()
    log = tmp_path / "refused.log"
    process = _start(log, port, *args, **settings)
    returncode = process.wait(60)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    return returncode, log.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("codec"), RELAYFLOW_CODEC_SERVER_TOKEN=TOKEN) as s:
        status, _, answer = call(s.port, body=ENCRYPTED)  # warm: first use loads protobuf JSON
        assert (status, _reveals(answer)) == (200, True)
        time.sleep(0.2)
        s.own_sockets = s.sockets()
        yield s
    assert s.process.returncode == 0, s.output
    assert TOKEN not in s.output
    assert SECRET not in s.output


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: str


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def _read_reply(sock: socket.socket) -> Reply:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Reply(response.status, response.headers, response.read().decode())


def call(port: int, *, method: str = "POST", path: str = "/decode", body: bytes = b"",
         **headers: str) -> Reply:
    """One request over a fresh socket, the CLI's headers unless overridden ('' drops one)."""
    sent = {"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json", "Content-Length": str(len(body)),
            **{k.replace("_", "-"): v for k, v in headers.items()}}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(method, path, {k: v for k, v in sent.items() if v}) + body)
        return _read_reply(sock)


def _reveals(answer: str) -> bool:
    """True when the answer carries the clear payload."""
    try:
        payloads = json_format.Parse(answer, Payloads())
    except json_format.ParseError:
        return SECRET in answer
    return any(SECRET.encode() in payload.data for payload in payloads.payloads)


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed it (after a 408, say), False while it is still held."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 16):
            pass  # an answer before the close
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset
    return True


# Starting ------------------------------------------------------------------------------------


def test_without_a_token_it_refuses_to_start(tmp_path: Path) -> None:
    returncode, output = refused_start(tmp_path)
    assert returncode == 2
    assert "needs a bearer token (RELAYFLOW_CODEC_SERVER_TOKEN)" in output
    returncode, output = refused_start(tmp_path, "--dev-no-token", "--host", "0.0.0.0")
    assert returncode == 2, "development mode is for loopback only"
    assert "codec server on" not in output


def test_any_origin_without_a_token_is_refused(tmp_path: Path) -> None:
    returncode, output = refused_start(tmp_path, "--dev-no-token",
                                       RELAYFLOW_CODEC_SERVER_ORIGINS="*")
    assert returncode == 2
    assert "any origin ('*') only with a token" in output


def test_loopback_development_without_a_token_says_so(tmp_path: Path) -> None:
    with running(tmp_path, "--dev-no-token") as server:
        warnings = [line for line in server.output.splitlines() if "DEVELOPMENT" in line]
        assert len(warnings) == 1, server.output
        status, _, answer = call(server.port, body=ENCRYPTED, Authorization="")
        assert (status, _reveals(answer)) == (200, True)


# Who may ask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", ["", "Bearer wrong", f"Basic {TOKEN}",
                                           f"Bearer {TOKEN[:-1]}", f"bearer {TOKEN}"])
def test_without_the_token_nothing_is_decoded(server: Server, authorization: str) -> None:
    status, headers, answer = call(server.port, body=ENCRYPTED, Authorization=authorization)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert not _reveals(answer)
    assert SECRET not in server.output


def test_two_authorization_headers_are_refused(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = _head("POST", "/decode", {"Host": "localhost", "Content-Length": str(len(ENCRYPTED)),
                                         "Authorization": "Bearer wrong"})
        sock.sendall(head[:-2] + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode() + ENCRYPTED)
        status, _, answer = _read_reply(sock)
    assert (status, _reveals(answer)) == (401, False)


@pytest.mark.parametrize(("host", "refusal"), [
    ("attacker.example", 421), ("attacker.example:8081", 421), ("127.0.0.2", 421),
    ("localhost.attacker.example", 421), ("", 400)])  # "": no Host header at all
def test_a_request_for_another_host_is_refused(server: Server, host: str, refusal: int) -> None:
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 calls with its own Host."""
    status, _, answer = call(server.port, body=ENCRYPTED, Host=host)
    assert status == refusal
    assert not _reveals(answer)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8081", "[::1]:8081", "127.0.0.1"])
def test_loopback_names_are_this_host(server: Server, host: str) -> None:
    status, _, answer = call(server.port, body=ENCRYPTED, Host=host)
    assert (status, _reveals(answer)) == (200, True)


def test_a_configured_host_name_is_served(tmp_path: Path) -> None:
    with running(tmp_path, RELAYFLOW_CODEC_SERVER_TOKEN=TOKEN,
                 RELAYFLOW_CODEC_SERVER_HOSTS="codec.bank.example") as server:
        assert call(server.port, body=ENCRYPTED, Host="codec.bank.example").status == 200
        assert call(server.port, body=ENCRYPTED, Host="codec.bank.example.evil").status == 421


@pytest.mark.parametrize("method", ["OPTIONS", "POST"])
def test_an_arbitrary_origin_is_never_granted(server: Server, method: str) -> None:
    status, headers, answer = call(server.port, method=method, body=ENCRYPTED,
                                   Origin="https://evil.example")
    assert status == 403
    assert headers["Access-Control-Allow-Origin"] is None
    assert headers["Access-Control-Allow-Credentials"] is None
    assert not _reveals(answer)


def test_the_listed_origin_is_echoed_with_credentials(server: Server) -> None:
    """The positive control of the test above."""
    status, headers, answer = call(server.port, body=ENCRYPTED, Origin=UI)
    assert (status, _reveals(answer)) == (200, True)
    assert headers["Access-Control-Allow-Origin"] == UI
    assert headers["Access-Control-Allow-Credentials"] == "true"


def test_any_origin_is_answered_without_credentials(tmp_path: Path) -> None:
    with running(tmp_path, RELAYFLOW_CODEC_SERVER_TOKEN=TOKEN,
                 RELAYFLOW_CODEC_SERVER_ORIGINS="*") as server:
        for method in ("OPTIONS", "POST"):
            _, headers, _ = call(server.port, method=method, body=ENCRYPTED,
                                 Origin="https://evil.example")
            assert headers["Access-Control-Allow-Origin"] == "*"
            assert headers["Access-Control-Allow-Credentials"] is None
        status, _, answer = call(server.port, body=ENCRYPTED, Origin="https://evil.example",
                                 Authorization="")
        assert (status, _reveals(answer)) == (401, False)


# What a client may cost ----------------------------------------------------------------------


def test_an_oversized_body_is_refused_unread(server: Server) -> None:
    """Content-Length 1 GiB, then as much body as the socket takes: 413, memory unmoved."""
    sent = 0
    with server.peak_growth() as growth, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_head("POST", "/decode", {"Host": "localhost", "Content-Length": str(1 << 30),
                                               "Authorization": f"Bearer {TOKEN}"}))
        reply = _read_reply(sock)
        sock.settimeout(2)
        chunk = b"x" * MiB
        try:
            while sent < 64 * MiB:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server closed: what it did not read, it did not keep
    assert reply.status == 413
    assert "at most 1048576 bytes" in reply.body
    assert sent < 16 * MiB
    assert growth[0] < 2 * MiB


@pytest.mark.parametrize("framing", [{"Transfer-Encoding": "chunked"}, {"Content-Length": ""}])
def test_a_body_without_a_length_is_refused(server: Server, framing: dict[str, str]) -> None:
    status, _, answer = call(server.port, body=b"", **framing)
    assert status == 411
    assert "Content-Length" in answer


def test_bodies_at_the_limit_cost_a_bounded_multiple(server: Server) -> None:
    """Twelve concurrent requests of the largest body: at most two are held at once."""
    many = Payloads(payloads=CODEC.encrypt(
        [Payload(data=os.urandom(4096)) for _ in range(180)]))
    body = json_format.MessageToJson(many).encode()
    assert MAX_BODY * 0.9 < len(body) <= MAX_BODY
    replies: list[int] = []
    threads = [threading.Thread(target=lambda: replies.append(
        call(server.port, body=body).status)) for _ in range(12)]
    with server.peak_growth() as growth:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert replies == [200] * 12
    # The stated bound: two bodies at a time, each costing at most eight times its size
    # while decoded (measured: about six).
    assert growth[0] < 2 * 8 * MAX_BODY + 4 * MiB, growth[0] / MiB


def test_slowloris_is_cut_off_and_others_are_still_answered(server: Server) -> None:
    """300 connections sending a request head a byte a second: 32 at most are held, each for
    at most the request timeout, and a legitimate request is answered promptly meanwhile."""
    head = _head("POST", "/decode", {"Host": "localhost", "X-Pad": "a" * 200})
    with ExitStack() as stack:
        slow = [stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
                for _ in range(300)]
        stop = threading.Event()

        def drip() -> None:
            for byte in head:
                for sock in slow:
                    with contextlib.suppress(OSError):  # cut off
                        sock.send(bytes([byte]))
                if stop.wait(1):
                    return

        dripping = threading.Thread(target=drip)
        dripping.start()
        try:
            time.sleep(1.5)
            assert server.sockets() <= server.own_sockets + MAX_CONNECTIONS
            started = time.monotonic()
            status, _, answer = call(server.port, body=ENCRYPTED)
            assert (status, _reveals(answer)) == (200, True)
            assert time.monotonic() - started < 1.5
            time.sleep(TIMEOUT + 1.5)
            assert sum(not _closed_by_server(sock) for sock in slow) == 0
        finally:
            stop.set()
            dripping.join()


def test_the_connection_count_is_bounded(server: Server) -> None:
    """Idle connections beyond the bound close the oldest; busy ones beyond it get 503."""
    with ExitStack() as stack:
        idle = [stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
                for _ in range(3 * MAX_CONNECTIONS)]
        time.sleep(0.5)
        assert sum(not _closed_by_server(sock) for sock in idle) <= MAX_CONNECTIONS
        assert server.sockets() <= server.own_sockets + MAX_CONNECTIONS
    time.sleep(0.5)
    with ExitStack() as stack:
        busy = [stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
                for _ in range(MAX_CONNECTIONS)]
        for sock in busy:  # authenticated, with half a body: not evictable
            sock.sendall(_head("POST", "/decode", {
                "Host": "localhost", "Authorization": f"Bearer {TOKEN}",
                "Content-Length": "100"}) + b"{")
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            assert _read_reply(extra).status == 503
        time.sleep(TIMEOUT + 1)
        for sock in busy:  # the slow bodies got a 408 and were closed
            sock.settimeout(5)
            assert _read_reply(sock).status == 408
    assert call(server.port, body=ENCRYPTED).status == 200
