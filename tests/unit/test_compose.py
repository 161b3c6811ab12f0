"""compose/ stays in step with the settings, the topic table and the dev stack's ACLs.

There is no Docker engine where relayflow is tested: these checks read the
files, they do not run them.
"""

from __future__ import annotations

import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from temporalio.service import TLSConfig

from relayflow.config.settings import Settings
from relayflow.devstack.secure import acl_plan, input_producers
from relayflow.kafka.clients import KafkaClients
from relayflow.reference.app import APP
from relayflow.reference.topics import TOPICS
from relayflow.temporal.payload_codec import payload_codec
from relayflow.temporal.tls import temporal_credentials

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
RELAYFLOW_SERVICES = ("worker", "bridge")


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: ``!reset`` drops what the files before set."""


def _reset(_loader: yaml.SafeLoader, _node: yaml.Node) -> None:
    return None


_ComposeLoader.add_constructor("!reset", _reset)
SECURE: dict[str, Any] = yaml.load(
    (COMPOSE_DIR / "docker-compose.secure.yml").read_text(), Loader=_ComposeLoader)
SECURE_SERVICES: dict[str, Any] = SECURE["services"]
KNOWN = ({f"RELAYFLOW_{name.upper()}" for name in Settings.model_fields}
         | {f.alias for f in Settings.model_fields.values() if f.alias})
SECRET_SETTINGS = {f"RELAYFLOW_{name.upper()}" for name, f in Settings.model_fields.items()
                   if f.annotation is not None and "SecretStr" in str(f.annotation)}


def test_services_are_all_there() -> None:
    assert set(SERVICES) == {"kafka", "kafka-init", "postgresql", "temporal", "temporal-ui",
                             "worker", "bridge", "prometheus", "grafana"}


def test_published_ports_match_the_default_settings() -> None:
    defaults = Settings()
    published = {name: [p.split(":")[-2] for p in svc.get("ports", [])]  # [ip:]host:container
                 for name, svc in SERVICES.items()}
    assert published["kafka"] == [str(defaults.kafka_port)]
    assert published["temporal"] == [str(defaults.temporal_port)]
    assert published["temporal-ui"] == [str(defaults.temporal_ui_port)]


def test_every_relayflow_variable_is_a_setting() -> None:
    for name in RELAYFLOW_SERVICES:
        env = SERVICES[name]["environment"]
        assert env, name
        assert set(env) <= KNOWN, set(env) - KNOWN
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


def test_the_secured_override_only_adds_services_and_names_settings() -> None:
    assert set(SECURE_SERVICES) - set(SERVICES) == {"kafka-acls", "temporal-tls"}
    for name in RELAYFLOW_SERVICES:
        env = SECURE_SERVICES[name]["environment"]
        assert set(env) <= KNOWN, set(env) - KNOWN
        assert env["RELAYFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["RELAYFLOW_KAFKA_SASL_USERNAME"] == name
        assert env["RELAYFLOW_TEMPORAL_ADDRESS"] == "temporal-tls:7233"


def _mounted(service: dict[str, Any]) -> dict[str, str]:
    """Where each secret of a service is mounted: /run/secrets/<target> -> its source."""
    found = {}
    for entry in service.get("secrets", []):
        source, target = (entry, entry) if isinstance(entry, str) else (
            entry["source"], entry.get("target", entry["source"]))
        found[f"/run/secrets/{target}"] = source
    return found


@pytest.mark.parametrize("name", RELAYFLOW_SERVICES)
def test_secrets_are_mounted_files_never_values(name: str) -> None:
    service = SECURE_SERVICES[name]
    env: dict[str, str] = service["environment"]
    mounted = _mounted(service)
    # No secret setting is given a value; each comes from its file in RELAYFLOW_SECRETS_DIR.
    assert not SECRET_SETTINGS & set(env), SECRET_SETTINGS & set(env)
    assert env["RELAYFLOW_SECRETS_DIR"] == "/run/secrets"
    from_files = {path.removeprefix("/run/secrets/") for path in mounted
                  if path.removeprefix("/run/secrets/").startswith("RELAYFLOW_")}
    assert from_files == {"RELAYFLOW_KAFKA_SASL_PASSWORD"}
    assert from_files <= SECRET_SETTINGS
    assert mounted["/run/secrets/RELAYFLOW_KAFKA_SASL_PASSWORD"] == f"kafka-{name}-password"
    # Every file setting names a file the service mounts.
    files = {variable: path for variable, path in env.items() if variable.endswith("_FILE")}
    assert files, env
    assert set(files.values()) <= set(mounted), set(files.values()) - set(mounted)


def test_every_secret_is_a_file() -> None:
    declared: dict[str, Any] = SECURE["secrets"]
    for name, secret in declared.items():
        assert secret == {"file": f"./secrets/{name}"}, name  # no inline value, no variable
    used = {source for service in SECURE_SERVICES.values()
            for source in _mounted(service).values()}
    assert used == set(declared)
    assert "compose/secrets/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="make-secrets.sh needs openssl")
def test_make_secrets_writes_every_secret_and_relayflow_can_use_them(tmp_path: Path) -> None:
    script = tmp_path / "make-secrets.sh"
    shutil.copy(COMPOSE_DIR / "make-secrets.sh", script)
    subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    folder = tmp_path / "secrets"
    assert {path.name for path in folder.iterdir()} == set(SECURE["secrets"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    env = SECURE_SERVICES["bridge"]["environment"]
    settings = Settings(**{
        name.removeprefix("RELAYFLOW_").lower(): folder / value.removeprefix("/run/secrets/")
        if value.startswith("/run/secrets/") else value
        for name, value in env.items() if name != "RELAYFLOW_SECRETS_DIR"},
        kafka_sasl_password=SecretStr((folder / "kafka-bridge-password").read_text()))
    KafkaClients(settings)  # the CA and the client certificate with its key load
    assert isinstance(temporal_credentials(settings).tls, TLSConfig)
    codec = payload_codec(settings)
    assert codec is not None
    assert codec.key_ids == ("compose-1",)


def test_the_secured_broker_takes_only_sasl_ssl_with_client_certificates() -> None:
    lines = (COMPOSE_DIR / "kafka-secure.properties").read_text().splitlines()
    props = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    protocols = dict(pair.split(":") for pair in props["listener.security.protocol.map"].split(","))
    assert protocols == {"INTERNAL": "SASL_SSL", "EXTERNAL": "SASL_SSL", "CONTROLLER": "PLAINTEXT"}
    assert "CONTROLLER://127.0.0.1:" in props["listeners"]  # the plaintext one: loopback only
    for listener in ("internal", "external"):
        assert props[f"listener.name.{listener}.ssl.client.auth"] == "required"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert not [key for key in props if "password" in key or "jaas" in key]
    assert "java.security.auth.login.config=/run/secrets/" in (
        SECURE_SERVICES["kafka"]["environment"]["KAFKA_OPTS"])


def test_the_acls_are_the_dev_stacks() -> None:
    script = SECURE_SERVICES["kafka-acls"]["command"][0]
    entries = re.search(r"for acl in (.+?); do", script)
    assert entries is not None
    kinds = {"topic": 2, "group": 3, "cluster": 4}
    created = set()
    for entry in shlex.split(entries.group(1)):
        principal, operation, kind, name, *pattern = entry.split(":")
        created.add((principal, operation.upper(), kinds[kind], name, pattern == ["prefixed"]))
    planned = {(a.principal, a.operation, a.resource_type, a.name, a.prefixed)
               for a in acl_plan(TOPICS, Settings().kafka_consumer_group, input_producers(APP))}
    assert created == planned


def test_secret_settings_are_known_to_the_check() -> None:
    assert {"RELAYFLOW_KAFKA_SASL_PASSWORD", "RELAYFLOW_KAFKA_SSL_KEY_PASSWORD",
            "RELAYFLOW_TEMPORAL_API_KEY", "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS",
            "RELAYFLOW_CODEC_SERVER_TOKEN"} <= SECRET_SETTINGS
