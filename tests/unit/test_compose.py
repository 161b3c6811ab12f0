"""compose/docker-compose.yml stays in step with the settings and the topic table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from relayflow.settings import Settings
from schemas.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_services_are_all_there() -> None:
    assert set(SERVICES) == {"kafka", "kafka-init", "postgresql", "temporal", "temporal-ui",
                             "worker", "bridge"}


def test_published_ports_match_the_default_settings() -> None:
    defaults = Settings()
    published = {name: [p.split(":")[0] for p in svc.get("ports", [])]
                 for name, svc in SERVICES.items()}
    assert published["kafka"] == [str(defaults.kafka_port)]
    assert published["temporal"] == [str(defaults.temporal_port)]
    assert published["temporal-ui"] == [str(defaults.temporal_ui_port)]


def test_every_relayflow_variable_is_a_setting() -> None:
    known = {f"RELAYFLOW_{name.upper()}" for name in Settings.model_fields}
    known |= {f.alias for f in Settings.model_fields.values() if f.alias}
    for name in ("worker", "bridge"):
        env = SERVICES[name]["environment"]
        assert env, name
        assert set(env) <= known, set(env) - known
        assert env["RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka:")
        assert env["RELAYFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_init_job_creates_exactly_the_topic_table() -> None:
    script = SERVICES["kafka-init"]["command"][0]
    specs = re.search(r"for spec in (.+?);", script)
    assert specs is not None
    created = {tuple(s.split(":")) for s in specs.group(1).split()}
    assert created == {(t.name, str(t.partitions), *t.configs.values()) for t in TOPICS}


def test_bridge_and_worker_wait_for_topics_and_temporal() -> None:
    for name in ("worker", "bridge"):
        deps = SERVICES[name]["depends_on"]
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"
        assert deps["temporal"]["condition"] == "service_healthy"
