"""The Grafana dashboard and the compose stack's Prometheus and Grafana files fit the code.

Every PromQL expression of the dashboard may only name metrics the bridge
and the worker export (or the Temporal SDK metric the metrics integration
test proves exists), the config files parse, and Prometheus scrapes the
ports the settings default to. ``promtool`` (Debian's ``prometheus``) checks
the scrape config when it is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from activities.metrics import WorkerMetrics
from bridge.metrics import BridgeMetrics
from relayflow.config.settings import Settings

COMPOSE = Path(__file__).resolve().parents[4] / "compose"
DASHBOARD: dict[str, Any] = json.loads(
    (COMPOSE / "grafana" / "dashboards" / "relayflow.json").read_text())
SDK_METRICS = frozenset({"temporal_workflow_completed"})
"""Temporal SDK metrics the dashboard may use: tests/integration/test_metrics.py queries each."""

_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
             "histogram": ("_bucket", "_count", "_sum", "_created")}
_KEYWORDS = frozenset({"by", "without", "bool", "on", "ignoring", "group_left", "group_right",
                       "offset", "and", "or", "unless", "inf", "nan"})


def exported_names() -> set[str]:
    """Every series name the bridge's and the worker's metrics are exposed under."""
    registry = CollectorRegistry()
    BridgeMetrics(registry)
    WorkerMetrics(registry)
    return {family.name + suffix for family in registry.collect()
            for suffix in _SUFFIXES[family.type]}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, ranges, functions aside)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {token for token, call in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr)
            if not call and token.lower() not in _KEYWORDS}


def expressions() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"]
            for target in panel.get("targets", [])]


def test_expression_parser_finds_metrics_only() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, command) '
        '(rate(relayflow_bridge_temporal_call_seconds_bucket{job="x"}[5m]))) > bool 1') == {
        "relayflow_bridge_temporal_call_seconds_bucket"}
    assert metric_names("sum(a_total) / on(topic) b") == {"a_total", "b"}


def test_every_dashboard_expression_names_exported_metrics() -> None:
    known = exported_names() | SDK_METRICS
    assert expressions()
    for expr in expressions():
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{expr}: unknown {sorted(names - known)}"


def test_dashboard_shows_rate_lag_dlq_latency_and_batches() -> None:
    used = set().union(*(metric_names(expr) for expr in expressions()))
    assert {"relayflow_bridge_records_consumed_total", "relayflow_bridge_consumer_lag",
            "relayflow_bridge_dead_letters_total",
            "relayflow_bridge_temporal_call_seconds_bucket",
            "relayflow_outcome_publish_seconds_bucket", "relayflow_batch_items_total"} <= used


def test_panels_use_the_provisioned_data_source() -> None:
    datasources = yaml.safe_load(
        (COMPOSE / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    assert len({panel["id"] for panel in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


def test_grafana_loads_the_dashboard_folder() -> None:
    provider = yaml.safe_load(
        (COMPOSE / "grafana" / "provisioning" / "dashboards" / "relayflow.yml").read_text())
    [folder] = [p["options"]["path"] for p in provider["providers"]]
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{folder}:ro" in mounts


def test_prometheus_scrapes_the_default_ports() -> None:
    config = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"]}
    defaults = Settings()
    assert targets == {
        "relayflow-bridge": [f"bridge:{defaults.bridge_http_port}"],
        "relayflow-worker": [f"worker:{defaults.worker_http_port}"],
        "temporal-sdk": [f"bridge:{defaults.temporal_metrics_port}",
                         f"worker:{defaults.temporal_metrics_port}"],
    }


def test_compose_healthchecks_ask_readiness_on_the_default_ports() -> None:
    services = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]
    defaults = Settings()
    for name, port in (("bridge", defaults.bridge_http_port),
                       ("worker", defaults.worker_http_port)):
        assert f"http://127.0.0.1:{port}/health/ready" in " ".join(
            services[name]["healthcheck"]["test"])


def test_promtool_accepts_the_scrape_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool comes with Debian's prometheus (make prometheus)")
    checked = subprocess.run([promtool, "check", "config", "--syntax-only",
                              str(COMPOSE / "prometheus" / "prometheus.yml")],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
