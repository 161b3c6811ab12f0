"""The local dev stack itself: idempotent up, restart keeps data, down stops only ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.reference.topics import TOPICS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _private_settings(data_dir: Path) -> Settings:
    kafka, controller, temporal, ui = free_port(), free_port(), free_port(), free_port()
    return Settings(
        data_dir=data_dir,
        kafka_port=kafka, kafka_controller_port=controller,
        kafka_bootstrap_servers=f"127.0.0.1:{kafka}",
        temporal_port=temporal, temporal_ui_port=ui, temporal_address=f"127.0.0.1:{temporal}",
    )


def test_up_is_idempotent_restart_keeps_topics_and_down_stops_ours(tmp_path: Path) -> None:
    settings = _private_settings(tmp_path / "stack")
    try:
        assert devstack.up(settings) is True
        first = devstack.status(settings)
        assert all(s.running for s in first.services)
        assert first.topics == {t.name: t.partitions for t in TOPICS}

        assert devstack.up(settings) is False  # reused, nothing restarted
        assert [s.pid for s in devstack.status(settings).services] == [
            s.pid for s in first.services]

        assert devstack.stop_kafka(settings) is True
        kafka_after_stop = devstack.status(settings).services[0]
        assert not kafka_after_stop.running
        assert devstack.start_kafka(settings) is True
        assert devstack.status(settings).topics == first.topics  # data survived
    finally:
        stopped = devstack.down(settings)
    assert sorted(stopped) == ["kafka", "temporal"]
    assert not any(s.running for s in devstack.status(settings).services)
    assert devstack.down(settings) == []


def test_wait_until_answering_returns_for_a_running_stack(stack: Settings) -> None:
    # What the testcontainers and external stacks rely on before creating topics.
    devstack.wait_until_answering(stack, timeout=30.0)
    # Returned because both answer: the broker describes every topic of the contract.
    assert devstack.ensure_topics(stack) == {t.name: t.partitions for t in TOPICS}


def test_wait_until_answering_wants_both_services_not_just_open_ports(stack: Settings) -> None:
    # Each address points at the *other* service: a port that accepts connections
    # but does not speak the protocol must not count as ready.
    kafka_port = stack.kafka_bootstrap_servers.rsplit(":", 1)[1]
    temporal_port = stack.temporal_address.rsplit(":", 1)[1]
    no_temporal = stack.model_copy(update={"temporal_address": f"127.0.0.1:{kafka_port}"})
    with pytest.raises(devstack.StackError, match=r"^temporal not ready after 2s$"):
        devstack.wait_until_answering(no_temporal, timeout=2.0)  # Kafka passed, Temporal did not
    no_kafka = stack.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{temporal_port}"})
    with pytest.raises(devstack.StackError, match=r"^kafka not ready after 2s$"):
        devstack.wait_until_answering(no_kafka, timeout=2.0)
