"""Dev stack pieces that need no running service."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from relayflow import devstack
from relayflow.config.settings import SettingError, Settings, load_settings
from relayflow.devstack.process import recorded_pid, spawn, stop_service
from relayflow.reference.topics import TOPICS
from schemas.topics import dlq_topic


def test_server_properties_for_one_kraft_node(tmp_path: Path) -> None:
    settings = Settings(kafka_port=19999, kafka_controller_port=19998)
    props = dict(
        line.split("=", 1)
        for line in devstack.render_server_properties(settings, tmp_path).splitlines()
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19998"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path)
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19999"
    behind_proxy = settings.model_copy(update={"kafka_advertised_port": 20001})
    assert "advertised.listeners=PLAINTEXT://127.0.0.1:20001\n" in \
        devstack.render_server_properties(behind_proxy, tmp_path)


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_three_brokers_are_one_replicated_cluster_with_a_three_voter_quorum(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, kafka_port=19990, kafka_controller_port=19991,
                        kafka_dev_brokers=3, kafka_dev_node_ports="19992/19993,19994/19995")
    nodes = devstack.kafka_nodes(settings)
    assert [(n.node_id, n.service, n.port, n.controller_port) for n in nodes] == [
        (1, "kafka", 19990, 19991), (2, "kafka-2", 19992, 19993), (3, "kafka-3", 19994, 19995)]
    assert devstack.bootstrap_servers(settings) == \
        "127.0.0.1:19990,127.0.0.1:19992,127.0.0.1:19994"
    assert devstack.replication_factor(settings) == 3
    second = _props(devstack.render_server_properties(settings, tmp_path, node=nodes[1],
                                                      cluster=nodes))
    assert second["node.id"] == "2"
    assert second["listeners"] == "PLAINTEXT://127.0.0.1:19992,CONTROLLER://127.0.0.1:19993"
    assert second["controller.quorum.bootstrap.servers"] == \
        "127.0.0.1:19991,127.0.0.1:19993,127.0.0.1:19995"
    for name in ("default.replication.factor", "offsets.topic.replication.factor",
                 "transaction.state.log.replication.factor"):
        assert second[name] == "3", name
    assert second["min.insync.replicas"] == second["transaction.state.log.min.isr"] == "2"
    single = _props(devstack.render_server_properties(settings, tmp_path))
    assert (single["node.id"], single["min.insync.replicas"]) == ("1", "1")
    assert devstack.replication_factor(settings.model_copy(update={"kafka_dev_brokers": 1})) == 1
    # Without ports given, the other nodes' follow the first's, two apart.
    assert Settings(kafka_dev_brokers=3).kafka_dev_ports == [(9092, 9093), (9094, 9095),
                                                              (9096, 9097)]


def test_a_formatted_cluster_is_found_without_the_setting(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "cluster.json").write_text(json.dumps({"cluster_id": "c", "nodes": [
        {"node_id": n, "port": 100 + n, "controller_port": 200 + n, "directory_id": f"d{n}"}
        for n in (1, 2, 3)]}))
    settings = Settings(data_dir=tmp_path)  # kafka_dev_brokers=1: `dev status`, `dev down`
    assert [s.name for s in devstack.status(settings).services] == [
        "kafka", "kafka-2", "kafka-3", "temporal"]
    assert devstack.status(settings).kafka_brokers == 3


@pytest.mark.parametrize(("env", "message"), [
    ({"RELAYFLOW_KAFKA_DEV_BROKERS": "2"},
     "RELAYFLOW_KAFKA_DEV_BROKERS: 2 brokers: the dev stack runs 1 or 3"),
    ({"RELAYFLOW_KAFKA_DEV_BROKERS": "3", "RELAYFLOW_KAFKA_DEV_NODE_PORTS": "9194/9195"},
     ("RELAYFLOW_KAFKA_DEV_NODE_PORTS has 1 port pairs, but RELAYFLOW_KAFKA_DEV_BROKERS=3 "
     "needs 2 (the ports of brokers 2 and up)")),
    ({"RELAYFLOW_KAFKA_DEV_NODE_PORTS": "9194"},
     ("RELAYFLOW_KAFKA_DEV_NODE_PORTS: '9194' is not port/controller_port "
     "(e.g. 9094/9095,9096/9097)")),
])
def test_bad_cluster_settings_are_named(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                        message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingError) as raised:
        load_settings()
    assert str(raised.value) == message


def test_every_input_topic_has_a_dlq_with_the_same_partitions() -> None:
    by_name = {t.name: t for t in TOPICS}
    assert by_name["orders.events"].partitions == 6
    for topic in (t for t in TOPICS if t.inbound):
        assert by_name[dlq_topic(topic.name)].partitions == topic.partitions


def test_stale_pid_file_is_cleaned_and_foreign_pid_not_trusted(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    pid_file = tmp_path / "kafka.pid.json"
    # A live process that is not ours (wrong command line) must not be mistaken for Kafka.
    with subprocess.Popen(["sleep", "30"]) as other:
        pid_file.write_text(json.dumps({"pid": other.pid, "marker": "server.properties"}))
        assert devstack.status(settings).services[0].pid is None
        assert not pid_file.exists()
        other.kill()
    pid_file.write_text(json.dumps({"pid": os.getpid(), "marker": "pytest"}))
    assert devstack.status(settings).services[0].pid == os.getpid()


def test_stopping_a_service_sends_sigterm_first_unless_its_grace_is_zero(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    (tmp_path / "stubborn").mkdir()
    termed = tmp_path / "termed"
    # Notes a SIGTERM and goes on: only the SIGKILL after the grace stops it.
    ready = tmp_path / "ready"
    script = f"trap 'touch {termed}' TERM; touch {ready}; while :; do sleep 0.1; done"
    stubborn = ["sh", "-c", script, "stubborn-service"]
    for grace, asked_first in ((1.0, True), (0.0, False)):
        termed.unlink(missing_ok=True)
        ready.unlink(missing_ok=True)
        pid = spawn(settings, "stubborn", stubborn, 0, "stubborn-service", tmp_path)
        for _ in range(300):  # bounded: until its trap is set
            if ready.exists():
                break
            time.sleep(0.05)
        assert recorded_pid(settings, "stubborn") == pid
        assert stop_service(settings, "stubborn", grace=grace) is True
        assert termed.exists() is asked_first, grace
        assert not Path(f"/proc/{pid}").exists()  # killed, and reaped
        assert recorded_pid(settings, "stubborn") is None
        assert not (tmp_path / "stubborn.pid.json").exists()
    assert stop_service(settings, "stubborn", grace=0) is False  # nothing left to stop


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 encodes to "-" as the first URL-safe base64 character; the storage
    # tool would parse such an id as an option (a real CI failure).
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))  # the module devstack calls
    cluster_id = devstack.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(b"\x01" * 16).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_wait_until_answering_names_the_service_that_never_answered() -> None:
    # A port nothing listens on: open ports alone would not do either, the
    # probe asks the broker for its topics.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
        with pytest.raises(devstack.StackError, match=r"^kafka not ready after 1s$"):
            devstack.wait_until_answering(settings, timeout=1.0)


def test_build_once_says_what_is_missing_and_why_a_build_failed(tmp_path: Path) -> None:
    with pytest.raises(devstack.StackError, match="no-such-tool is needed once to fetch x"):
        devstack.build_once("no-such-tool", [], purpose="fetch x")
    with pytest.raises(devstack.StackError, match=r"sh could not build y:\nboom"):
        devstack.build_once("sh", ["-c", "echo boom; exit 3"], purpose="build y")
    devstack.build_once("sh", ["-c", 'echo "$X" > out'], purpose="write", cwd=tmp_path,
                        env={"X": "made"})
    assert (tmp_path / "out").read_text() == "made\n"


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [devstack.free_port() for _ in range(50)]
    assert len(set(ports)) == 50  # never the same twice in one process
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < ephemeral_low for port in ports)  # no outgoing connection takes one
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
