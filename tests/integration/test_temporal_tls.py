"""Temporal over TLS: mTLS and an API key, through a real TLS terminator in front of the server.

nginx (``devtools.tls``) ends TLS in front of the session's Temporal and
demands a client certificate from our test CA, or, in front of a second
listener, an API key as ``authorization: Bearer <key>`` (what Temporal Cloud
asks). Bridge, worker and CLI reach Temporal only through it here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from devtools.tls import Pki, TlsTerminator, make_pki
from relayflow.application import Application
from relayflow.cli.main import app as cli
from relayflow.config.settings import SettingError, Settings
from relayflow.devstack.process import service_dir
from relayflow.reference.events import OrderCompleted
from relayflow.runtime.bootstrap import connect_temporal, wait_for_temporal
from relayflow.testing.kafka import AppKafka
from relayflow.testing.system import running_system
from tests.helpers.secrets_scan import Secret, Written
from tests.helpers.support import order_placed
from tests.integration.running import worker_output

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

API_KEY = "tmprl-it-key.7d0e5b3a91c4"
_CERT = "RELAYFLOW_TEMPORAL_TLS_CERT_FILE"
_CA = "RELAYFLOW_TEMPORAL_TLS_CA_FILE"
_NAME = "RELAYFLOW_TEMPORAL_TLS_SERVER_NAME"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_terminator(relayflow_stack: Settings, pki: Pki,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTerminator]:
    with TlsTerminator(pki, relayflow_stack.temporal_address,
                       tmp_path_factory.mktemp("nginx-mtls")) as terminator:
        yield terminator


@pytest.fixture(scope="module")
def key_terminator(relayflow_stack: Settings, pki: Pki,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTerminator]:
    with TlsTerminator(pki, relayflow_stack.temporal_address,
                       tmp_path_factory.mktemp("nginx-key"), api_key=API_KEY) as terminator:
        yield terminator


@pytest.fixture(scope="module")
def mtls(relayflow_stack: Settings, pki: Pki, mtls_terminator: TlsTerminator) -> Settings:
    """The session's stack with Temporal reached only through the mTLS terminator."""
    return relayflow_stack.model_copy(update={
        "temporal_address": mtls_terminator.address, "temporal_tls_ca_file": pki.ca,
        "temporal_tls_cert_file": pki.client.cert, "temporal_tls_key_file": pki.client.key})


def _calls(terminator: TlsTerminator, method: str) -> list[str]:
    """The terminator's access log lines of ``method`` (subject, URI, HTTP status)."""
    return [line for line in terminator.access_log.read_text().splitlines()
            if f".WorkflowService/{method} " in line]


async def test_an_order_completes_with_bridge_and_worker_on_mtls(
        mtls: Settings, relayflow_app: Application, relayflow_kafka: AppKafka,
        mtls_terminator: TlsTerminator) -> None:
    order = order_placed()
    async with running_system(mtls, relayflow_app):
        await relayflow_kafka.send(order)
        outcome = await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
        # The saga ends after publishing; left running, it would stall later queries.
        client = await connect_temporal(mtls)
        await client.get_workflow_handle(f"order-{order.order_id}").result()
    assert outcome.order_id == order.order_id
    # The bridge started the saga and the worker ran it, both with the client certificate.
    for method in ("StartWorkflowExecution", "RespondWorkflowTaskCompleted"):
        calls = _calls(mtls_terminator, method)
        assert calls, method
        assert all(line.startswith("CN=relayflow-client ") for line in calls), calls


def test_relayflow_approvals_connects_over_mtls(mtls: Settings) -> None:
    # The server name is checked against the certificate (issued to localhost) and sent as SNI.
    env = {**mtls.as_env(), "RELAYFLOW_TEMPORAL_TLS_SERVER_NAME": "localhost"}
    result = CliRunner().invoke(cli, ["approvals"], env=env)
    assert result.exit_code == 0, result.output
    assert "pending approvals" in result.stdout


_REFUSED = ("refused the client's credentials (Unauthenticated: client certificate missing or "
            "not trusted)")


def _refused(mtls: Settings, pki: Pki, stack: Settings) -> dict[str, tuple[dict[str, Any], str]]:
    """Settings that Temporal (or the terminator) refuses, by case: the update, the one line."""
    at, plain = f"Temporal at {mtls.temporal_address}", f"Temporal at {stack.temporal_address}"
    no_files = {"temporal_tls_ca_file": None, "temporal_tls_cert_file": None,
                "temporal_tls_key_file": None}
    return {
        "no-client-cert": (
            {"temporal_tls_cert_file": None, "temporal_tls_key_file": None},
            f"{_CERT} / RELAYFLOW_TEMPORAL_API_KEY (neither is set): {at} {_REFUSED}"),
        "foreign-client-cert": (
            {"temporal_tls_cert_file": pki.stranger.cert,
             "temporal_tls_key_file": pki.stranger.key},
            f"{_CERT}: {at} {_REFUSED}"),
        "untrusted-server": (
            {"temporal_tls_ca_file": pki.other_ca},
            f"{_CA}: {at} presented a certificate not signed by the CA in {_CA} (UnknownIssuer)"),
        "wrong-server-name": (
            {"temporal_tls_server_name": "temporal.example.com"},
            f"{_NAME}: the certificate of {at} is not issued to temporal.example.com"),
        "tls-to-plaintext": (
            {"temporal_address": stack.temporal_address},
            f"RELAYFLOW_TEMPORAL_TLS: {plain} does not speak TLS"),
        "plaintext-to-tls": (
            no_files,
            f"RELAYFLOW_TEMPORAL_TLS: {at} does not speak plaintext HTTP/2; does it want TLS?"),
    }


_CASES = ["no-client-cert", "foreign-client-cert", "untrusted-server", "wrong-server-name",
          "tls-to-plaintext", "plaintext-to-tls"]


@pytest.mark.parametrize("case", _CASES)
async def test_a_refused_connection_is_one_line_naming_the_setting_and_no_retries(
        case: str, mtls: Settings, pki: Pki, relayflow_stack: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    update, expected = _refused(mtls, pki, relayflow_stack)[case]
    settings = mtls.model_copy(update=update)
    if case == "plaintext-to-tls":
        assert await _named_refusal(settings) == expected
        return  # wait_for_temporal may meet the closed connection first, and rightly retry
    with pytest.raises(SettingError) as direct:
        await connect_temporal(settings)
    assert str(direct.value) == expected
    # The bridge's way in waits out an unreachable Temporal, but not this: it fails at once.
    with caplog.at_level(logging.WARNING), pytest.raises(SettingError) as waited:
        await wait_for_temporal(settings, retries=False)
    assert str(waited.value) == expected
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


async def _named_refusal(settings: Settings) -> str:
    """Connect until the refusal is named; only a closed connection may come before.

    nginx answers a plaintext client on its TLS port with a TLS alert, which the
    client reads as a bad HTTP/2 frame (the refusal). On a loaded machine the
    client may see the connection closed before it reads the alert, or its first
    call may time out before then: both look exactly like a network cut, so they
    are (rightly) not a refusal and callers retry.
    """
    others: list[str] = []
    for _ in range(10):
        try:
            await connect_temporal(settings)
        except SettingError as error:
            named = str(error)
            break
        except RuntimeError as error:
            others.append(str(error))
    else:
        named = ""
    silent = ("connection closed", "Timeout expired")
    assert all(any(sign in other for sign in silent) for other in others), others
    return named


def test_relayflow_worker_without_a_client_certificate_exits_with_one_line(
        mtls: Settings) -> None:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("RELAYFLOW_")}
    env.update(mtls.as_env())
    del env["RELAYFLOW_TEMPORAL_TLS_CERT_FILE"], env["RELAYFLOW_TEMPORAL_TLS_KEY_FILE"]
    env["RELAYFLOW_LOG_LEVEL"] = "WARNING"  # info lines (where metrics are served) are no error
    worker = subprocess.run([str(Path(sys.executable).with_name("relayflow")), "worker"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert worker.returncode == 2, worker.stderr
    assert worker.stdout == ""
    [line] = worker.stderr.splitlines()
    assert line.startswith(f"relayflow: {_CERT} / RELAYFLOW_TEMPORAL_API_KEY (neither is set): "
                           f"Temporal at {mtls.temporal_address} refused"), line


async def test_the_api_key_is_sent_over_tls_and_never_logged(
        relayflow_stack: Settings, pki: Pki, key_terminator: TlsTerminator,
        caplog: pytest.LogCaptureFixture) -> None:
    # This process's log records; a worker process's whole output (the Temporal core's log
    # included) is the next test's.
    settings = relayflow_stack.model_copy(update={
        "temporal_address": key_terminator.address, "temporal_tls_ca_file": pki.ca,
        "temporal_api_key": SecretStr(API_KEY)})
    with caplog.at_level(logging.DEBUG):
        # The terminator refuses any call without "authorization: Bearer <API_KEY>".
        client = await wait_for_temporal(settings)
        await client.count_workflows()
    # nginx logs a call when it ends, which may be just after the client has its answer.
    async with asyncio.timeout(10):
        while not _calls(key_terminator, "CountWorkflowExecutions"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(settings)


async def test_a_wrong_api_key_is_refused_naming_the_setting_not_the_key(
        relayflow_stack: Settings, pki: Pki, key_terminator: TlsTerminator) -> None:
    wrong = "tmprl-it-key.wrong-one"
    settings = relayflow_stack.model_copy(update={
        "temporal_address": key_terminator.address, "temporal_tls_ca_file": pki.ca,
        "temporal_api_key": SecretStr(wrong)})
    with pytest.raises(SettingError) as refused:
        await wait_for_temporal(settings)
    assert str(refused.value) == (
        f"RELAYFLOW_TEMPORAL_API_KEY: Temporal at {key_terminator.address} refused the "
        "client's credentials (Unauthenticated: API key missing or not valid)")


@pytest.mark.parametrize("credential", ["api key", "client certificate"])
async def test_no_credential_in_a_worker_process_output_with_the_core_logging_at_trace(
        credential: str, relayflow_stack: Settings, pki: Pki, key_terminator: TlsTerminator,
        mtls_terminator: TlsTerminator, tmp_path: Path) -> None:
    by_key = credential == "api key"
    terminator = key_terminator if by_key else mtls_terminator
    settings = relayflow_stack.model_copy(update={
        "temporal_address": terminator.address, "temporal_tls_ca_file": pki.ca,
        "task_queue": f"tls-output-{uuid.uuid4().hex[:8]}",
        **({"temporal_api_key": SecretStr(API_KEY)} if by_key else {
            "temporal_tls_cert_file": pki.client.cert,
            "temporal_tls_key_file": pki.client.key})})
    temporal = service_dir(relayflow_stack, "temporal") / "stdout.log"
    temporal_before = temporal.stat().st_size if temporal.exists() else 0
    calls_before = len(terminator.access_log.read_text().splitlines())
    output = await worker_output(settings, tmp_path)
    written = Written()
    written.add("worker stdout (the Temporal core)", output.stdout)
    written.add("worker stderr (relayflow)", output.stderr)
    # Every call the worker made went through the terminator, with the credential.
    written.add("terminator's calls", "\n".join(
        terminator.access_log.read_text().splitlines()[calls_before:]))
    if temporal.exists():  # the stack is this session's own: the server's output too
        with temporal.open("rb") as log:
            log.seek(temporal_before)
            written.add("Temporal server output", log.read())
    written.assert_filled({
        "worker stdout (the Temporal core)": [
            "temporalio_sdk_core::worker", "Initializing worker", settings.task_queue,
            "h2::codec::framed_write"],
        "worker stderr (relayflow)": [
            f"worker polling task queue {settings.task_queue} on {terminator.address}"],
        "terminator's calls": [
            (f"{'-' if by_key else 'CN=relayflow-client'} /temporal.api.workflowservice.v1."
             "WorkflowService/GetSystemInfo 200"), "WorkflowService/ShutdownWorker 200"],
    })
    secrets = [Secret.text("the API key", API_KEY),
               Secret.pem_key("the client's private key", pki.client.key),
               Secret.pem_key("the terminator's private key", pki.server.key)]
    assert written.leaks(secrets) == []
    # The control: the scan finds each secret where it is.
    given = Written()
    given.add("secrets", b"\n".join([API_KEY.encode(), pki.client.key.read_bytes(),
                                      pki.server.key.read_bytes()]))
    assert {leak.split(" (")[0] for leak in given.leaks(secrets)} == {s.name for s in secrets}
