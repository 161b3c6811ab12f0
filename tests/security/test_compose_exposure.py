"""The compose stacks expose nothing unauthenticated on all interfaces.

No Docker engine runs where relayflow is tested, so this reads the files and
merges them as Compose does (``docker-compose.yml``, then
``docker-compose.secure.yml`` over it: ports and secrets appended, environment
and ``depends_on`` merged by key, ``!reset`` and ``!override`` honoured), then
checks every service of the result:

* a published port binds 127.0.0.1 (or ::1), unless the service authenticates
  every client itself (the secured stack's Kafka: SASL_SSL with client
  certificates; its Temporal TLS terminator: client certificates); the
  plaintext stack publishes on loopback only, full stop;
* no service shares the host's network (``network_mode: host`` publishes all);
* secured: Prometheus is not published; the Temporal UI talks to Temporal
  through the TLS terminator with a client certificate, host verification on,
  write actions off; Grafana has anonymous access off and its admin password
  from a mounted secret, never a value.

The last tests run the same checks on a copy of what the files said before
(issue 18, finding 6) and show each finding is caught.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
LOOPBACK_NAMES = {"localhost"}
"""Host addresses Compose accepts that mean loopback besides IP literals."""


@dataclass(frozen=True)
class _Reset:
    """``!reset``: drop what the files before set."""


@dataclass(frozen=True)
class _Override:
    """``!override``: replace, do not merge, what the files before set."""

    value: Any


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags kept as markers."""


def _reset(_loader: yaml.SafeLoader, _node: yaml.Node) -> _Reset:
    return _Reset()


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> _Override:
    if isinstance(node, yaml.SequenceNode):
        return _Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return _Override(loader.construct_mapping(node, deep=True))
    return _Override(loader.construct_scalar(node))  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!reset", _reset)
_ComposeLoader.add_constructor("!override", _override)


def services_of(text: str) -> dict[str, dict[str, Any]]:
    """The services of one compose file's text, merge tags kept."""
    services: dict[str, dict[str, Any]] = yaml.load(text, Loader=_ComposeLoader)["services"]
    return services


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, list):  # environment: ["K=V"], depends_on: [name]
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in value)
    return dict(value or {})


def merged(base: dict[str, dict[str, Any]],
           *overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services as ``docker compose -f base -f override ...`` sees them (the keys checked here)."""
    result = {name: dict(service) for name, service in base.items()}
    for override in overrides:
        for name, service in override.items():
            target = result.setdefault(name, {})
            for key, value in service.items():
                if isinstance(value, _Reset):
                    target.pop(key, None)
                elif isinstance(value, _Override):
                    target[key] = value.value
                elif key in {"ports", "secrets", "volumes"}:
                    target[key] = [*target.get(key, []), *value]
                elif key in {"environment", "depends_on"}:
                    target[key] = {**_as_map(target.get(key)), **_as_map(value)}
                else:
                    target[key] = value
    return result


def host_address(port: str | dict[str, Any]) -> str:
    """The host address a ``ports`` entry binds; ``0.0.0.0`` when it names none."""
    if isinstance(port, dict):
        return str(port.get("host_ip") or "0.0.0.0")
    mapping = str(port).split("/", 1)[0]
    if mapping.startswith("["):  # "[::1]:8080:80"
        return mapping[1:mapping.index("]")]
    parts = mapping.rsplit(":", 2)
    # "80" and "8080:80" bind every interface; "ip:8080:80" binds ip.
    return parts[0] if len(parts) == 3 else "0.0.0.0"


def is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _kafka_authenticates() -> bool:
    lines = (COMPOSE_DIR / "kafka-secure.properties").read_text().splitlines()
    props = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return ("EXTERNAL:SASL_SSL" in props.get("listener.security.protocol.map", "")
            and props.get("listener.name.external.ssl.client.auth") == "required")


def _terminator_authenticates() -> bool:
    conf = (COMPOSE_DIR / "temporal-tls.conf").read_text()
    return "ssl_verify_client on;" in conf and "listen 7233 ssl;" in conf


AUTHENTICATING = {"kafka": _kafka_authenticates, "temporal-tls": _terminator_authenticates}
"""Services of the secured stack that may publish beyond loopback: each checks every client."""


def _mounted(service: dict[str, Any]) -> set[str]:
    targets = (entry if isinstance(entry, str) else entry.get("target", entry["source"])
               for entry in service.get("secrets", []))
    return {f"/run/secrets/{target}" for target in targets}


def exposure_problems(services: dict[str, dict[str, Any]], *, secured: bool) -> list[str]:
    """What the stack exposes that it should not; empty when nothing."""
    problems = []
    for name, service in sorted(services.items()):
        if service.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host publishes every port it listens on")
        for port in service.get("ports", []):
            address = host_address(port)
            allowed = secured and name in AUTHENTICATING and AUTHENTICATING[name]()
            if not is_loopback(address) and not allowed:
                problems.append(f"{name}: port {port!r} published on {address}")
    if secured:
        problems += _secured_service_problems(services)
    return problems


def _secured_service_problems(services: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    if services["prometheus"].get("ports"):
        problems.append("prometheus: published")
    ui = services["temporal-ui"]
    env, mounted = _as_map(ui.get("environment")), _mounted(ui)
    if env.get("TEMPORAL_ADDRESS") != "temporal-tls:7233":
        problems.append(f"temporal-ui: talks to {env.get('TEMPORAL_ADDRESS')}, "
                        "not through the TLS terminator")
    problems.extend(f"temporal-ui: {variable} names no mounted secret"
                    for variable in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")
                    if env.get(variable) not in mounted)
    if str(env.get("TEMPORAL_TLS_ENABLE_HOST_VERIFICATION")).lower() != "true":
        problems.append("temporal-ui: TLS host verification off")
    if str(env.get("TEMPORAL_DISABLE_WRITE_ACTIONS")).lower() != "true":
        problems.append("temporal-ui: write actions on")
    grafana = services["grafana"]
    env, mounted = _as_map(grafana.get("environment")), _mounted(grafana)
    if str(env.get("GF_AUTH_ANONYMOUS_ENABLED")).lower() != "false":
        problems.append("grafana: anonymous access on")
    if "GF_SECURITY_ADMIN_PASSWORD" in env:
        problems.append("grafana: admin password is a value in the file")
    if env.get("GF_SECURITY_ADMIN_PASSWORD__FILE") not in mounted:
        problems.append("grafana: admin password is not a mounted secret (admin/admin)")
    return problems


BASE = services_of((COMPOSE_DIR / "docker-compose.yml").read_text())
SECURE_OVERRIDE = services_of((COMPOSE_DIR / "docker-compose.secure.yml").read_text())
SECURED = merged(BASE, SECURE_OVERRIDE)


def test_the_secured_stack_exposes_nothing_unauthenticated() -> None:
    assert exposure_problems(SECURED, secured=True) == []
    # What it does publish beyond loopback: the TLS terminator, which demands a certificate.
    wide = {name for name, service in SECURED.items() for port in service.get("ports", [])
            if not is_loopback(host_address(port))}
    assert wide == {"temporal-tls"}


def test_the_plaintext_stack_publishes_on_loopback_only() -> None:
    assert exposure_problems(BASE, secured=False) == []
    assert all(service.get("ports") for name, service in BASE.items()
               if name in {"kafka", "temporal", "temporal-ui", "prometheus", "grafana"})


@pytest.mark.parametrize(("port", "address"), [
    ("9090", "0.0.0.0"), ("9090:9090", "0.0.0.0"), ("0.0.0.0:9090:9090", "0.0.0.0"),
    ("127.0.0.1:9090:9090/tcp", "127.0.0.1"), ("[::1]:9090:9090", "::1"),
    ({"target": 9090, "published": 9090}, "0.0.0.0"),
    ({"target": 9090, "published": 9090, "host_ip": "127.0.0.1"}, "127.0.0.1"),
])
def test_port_entries_are_read_as_compose_reads_them(port: str | dict[str, Any],
                                                     address: str) -> None:
    assert host_address(port) == address


# A copy of what docker-compose.yml said before issue 18 for the services concerned
# (docker-compose.secure.yml did not mention them).
BEFORE = """
services:
  temporal:
    ports:
      - "7233:7233"
  temporal-ui:
    ports:
      - "8233:8080"
    environment:
      TEMPORAL_ADDRESS: temporal:7233
      TEMPORAL_CORS_ORIGINS: http://localhost:8233
  prometheus:
    ports:
      - "9090:9090"
  grafana:
    ports:
      - "3000:3000"
    environment:
      GF_AUTH_ANONYMOUS_ENABLED: "true"
      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer
"""
BEFORE_SERVICES = {**BASE, **services_of(BEFORE)}
FINDINGS = [
    "grafana: port '3000:3000' published on 0.0.0.0",
    "prometheus: port '9090:9090' published on 0.0.0.0",
    "temporal-ui: port '8233:8080' published on 0.0.0.0",
    "prometheus: published",
    "temporal-ui: talks to temporal:7233, not through the TLS terminator",
    "temporal-ui: TEMPORAL_TLS_CA names no mounted secret",
    "temporal-ui: TEMPORAL_TLS_CERT names no mounted secret",
    "temporal-ui: TEMPORAL_TLS_KEY names no mounted secret",
    "temporal-ui: TLS host verification off",
    "temporal-ui: write actions on",
    "grafana: anonymous access on",
    "grafana: admin password is not a mounted secret (admin/admin)",
]


def test_the_files_before_issue_18_fail_every_rule() -> None:
    before_override = {name: service for name, service in SECURE_OVERRIDE.items()
                       if name not in {"temporal-ui", "prometheus", "grafana"}}
    found = exposure_problems(merged(BEFORE_SERVICES, before_override), secured=True)
    assert sorted(found) == sorted(FINDINGS)
    plaintext = exposure_problems(BEFORE_SERVICES, secured=False)
    assert "temporal: port '7233:7233' published on 0.0.0.0" in plaintext


@pytest.mark.parametrize(("override", "finding"), [
    ("  grafana:\n    environment:\n      GF_SECURITY_ADMIN_PASSWORD: admin\n",
     "grafana: admin password is a value in the file"),
    ("  temporal-ui:\n    environment:\n      TEMPORAL_DISABLE_WRITE_ACTIONS: 'false'\n",
     "temporal-ui: write actions on"),
    ("  temporal-ui:\n    ports: !override ['8233:8080']\n",
     "temporal-ui: port '8233:8080' published on 0.0.0.0"),
    ("  prometheus:\n    ports: ['127.0.0.1:9090:9090']\n", "prometheus: published"),
    ("  grafana:\n    network_mode: host\n",
     "grafana: network_mode host publishes every port it listens on"),
    ("  kafka-acls:\n    ports: ['9999']\n", "kafka-acls: port '9999' published on 0.0.0.0"),
])
def test_a_later_override_that_weakens_the_stack_is_caught(override: str, finding: str) -> None:
    weakened = merged(BASE, SECURE_OVERRIDE, services_of("services:\n" + override))
    assert exposure_problems(weakened, secured=True) == [finding]
