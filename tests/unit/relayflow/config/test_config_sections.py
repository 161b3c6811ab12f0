"""Settings by section: the same variables as before the split, each documented, config a leaf.

The reference application's settings are a class of their own (``ReferenceSettings``),
read from the same environment; the framework's ``Settings`` ignores their variables.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from bridge.config import BridgeConfig
from bridge.decoding import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT
from devtools.docs_reference import (
    UndocumentedSettingError,
    docstring_attributes,
    document_settings,
)
from relayflow.application import WorkerResources
from relayflow.config import EnvSettings, SettingError, Settings, load_settings
from relayflow.config.kafka import KafkaSettings
from relayflow.config.temporal import PayloadEncryptionSettings
from relayflow.reference.activities.approval_policy import ApprovalPolicyRequest
from relayflow.reference.activities.batches import BatchActivities
from relayflow.reference.app import reference_activities
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.timeouts import (
    ActivityTimeouts,
    activity_timeouts,
    use_activity_timeouts,
)
from relayflow.temporal.payload_codec import payload_codec
from tests.helpers.fakes import FakeProducer

ROOT = Path(__file__).resolve().parents[4]

# Captured from relayflow/config/settings.py before it was split (81 fields).
VARIABLES_BEFORE_THE_SPLIT = frozenset({
    "RELAYFLOW_APP", "RELAYFLOW_APPROVAL_THRESHOLD_CENTS", "RELAYFLOW_APPROVAL_TIMEOUT_SECONDS",
    "RELAYFLOW_APPROVER", "RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT", "RELAYFLOW_BRIDGE_BATCH_SIZE",
    "RELAYFLOW_BRIDGE_CONCURRENCY", "RELAYFLOW_BRIDGE_HTTP_PORT", "RELAYFLOW_BRIDGE_PARK_KEYS",
    "RELAYFLOW_BRIDGE_SHUTDOWN_SECONDS", "RELAYFLOW_BRIDGE_SIGNAL_HOLD_SECONDS",
    "RELAYFLOW_CACHE_DIR", "RELAYFLOW_CARD_LIMIT_CENTS", "RELAYFLOW_CODEC_SERVER_ORIGINS",
    "RELAYFLOW_CODEC_SERVER_TOKEN", "RELAYFLOW_CONSOLE_HOST", "RELAYFLOW_CONSOLE_PORT",
    "RELAYFLOW_CONSOLE_SECRET_KEY", "RELAYFLOW_CONSOLE_SECURE_COOKIES",
    "RELAYFLOW_CONSOLE_SESSION_SECONDS", "RELAYFLOW_CONSOLE_SIGNIN_ADDRESS_ATTEMPTS",
    "RELAYFLOW_CONSOLE_SIGNIN_ATTEMPTS", "RELAYFLOW_CONSOLE_SIGNIN_LOCKOUT_SECONDS",
    "RELAYFLOW_CONSOLE_SIGNIN_WINDOW_SECONDS", "RELAYFLOW_CONSOLE_TRUSTED_PROXIES",
    "RELAYFLOW_CONSOLE_TRUSTED_ROLES_HEADER", "RELAYFLOW_CONSOLE_TRUSTED_USER_HEADER",
    "RELAYFLOW_CONSOLE_USERS", "RELAYFLOW_CONSOLE_USERS_FILE", "RELAYFLOW_DATA_DIR",
    "RELAYFLOW_ESCALATION_APPROVER", "RELAYFLOW_ESCALATION_TIMEOUT_SECONDS",
    "RELAYFLOW_HTTP_HOST", "RELAYFLOW_KAFKA_ADVERTISED_PORT", "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS",
    "RELAYFLOW_KAFKA_CONSUMER_GROUP", "RELAYFLOW_KAFKA_CONTROLLER_PORT",
    "RELAYFLOW_KAFKA_DEV_BROKERS", "RELAYFLOW_KAFKA_DEV_NODE_PORTS", "RELAYFLOW_KAFKA_DEV_SECURE",
    "RELAYFLOW_KAFKA_PORT", "RELAYFLOW_KAFKA_SASL_MECHANISM", "RELAYFLOW_KAFKA_SASL_PASSWORD",
    "RELAYFLOW_KAFKA_SASL_USERNAME", "RELAYFLOW_KAFKA_SECURITY_PROTOCOL",
    "RELAYFLOW_KAFKA_SSL_CA_FILE", "RELAYFLOW_KAFKA_SSL_CERT_FILE",
    "RELAYFLOW_KAFKA_SSL_CHECK_HOSTNAME", "RELAYFLOW_KAFKA_SSL_KEY_FILE",
    "RELAYFLOW_KAFKA_SSL_KEY_PASSWORD", "RELAYFLOW_KAFKA_VERSION", "RELAYFLOW_LOG_FORMAT",
    "RELAYFLOW_LOG_LEVEL", "RELAYFLOW_MAX_HEADER_BYTES", "RELAYFLOW_MAX_HEADER_COUNT",
    "RELAYFLOW_MAX_PAYLOAD_BYTES", "RELAYFLOW_METRICS", "RELAYFLOW_OPERATOR_TIMEOUT_SECONDS",
    "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS", "RELAYFLOW_PAYLOAD_ENCRYPTION_KEYS_FILE",
    "RELAYFLOW_PAYLOAD_ENCRYPTION_KEY_ID", "RELAYFLOW_READY_OUTAGE_GRACE_SECONDS",
    "RELAYFLOW_SCHEMA_REGISTRY_TIMEOUT_SECONDS", "RELAYFLOW_SCHEMA_REGISTRY_URL",
    "RELAYFLOW_SECRETS_DIR", "RELAYFLOW_STORE_PATH", "RELAYFLOW_TASK_QUEUE",
    "RELAYFLOW_TEMPORAL_ADDRESS", "RELAYFLOW_TEMPORAL_API_KEY", "RELAYFLOW_TEMPORAL_METRICS_PORT",
    "RELAYFLOW_TEMPORAL_NAMESPACE", "RELAYFLOW_TEMPORAL_PORT", "RELAYFLOW_TEMPORAL_TLS",
    "RELAYFLOW_TEMPORAL_TLS_CA_FILE", "RELAYFLOW_TEMPORAL_TLS_CERT_FILE",
    "RELAYFLOW_TEMPORAL_TLS_KEY_FILE", "RELAYFLOW_TEMPORAL_TLS_SERVER_NAME",
    "RELAYFLOW_TEMPORAL_UI_BASE_URL", "RELAYFLOW_TEMPORAL_UI_PORT", "RELAYFLOW_TRACING",
    "RELAYFLOW_WORKER_HTTP_PORT",
})
REFERENCE_ONLY = frozenset({
    "RELAYFLOW_APPROVAL_THRESHOLD_CENTS", "RELAYFLOW_APPROVAL_TIMEOUT_SECONDS",
    "RELAYFLOW_ESCALATION_TIMEOUT_SECONDS", "RELAYFLOW_APPROVER", "RELAYFLOW_ESCALATION_APPROVER",
    "RELAYFLOW_CARD_LIMIT_CENTS", "RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT", "RELAYFLOW_STORE_PATH",
    "RELAYFLOW_APPROVAL_THRESHOLDS", "RELAYFLOW_BATCH_ITEM_WORK_SECONDS",
    "RELAYFLOW_APPROVAL_KEYS", "RELAYFLOW_APPROVAL_SIGNATURES",
    "RELAYFLOW_ORDER_STEP_TIMEOUT_SECONDS", "RELAYFLOW_BATCH_CHUNK_HEARTBEAT_TIMEOUT_SECONDS",
})
"""What moved to the reference app (``ReferenceSettings``), and what it added since."""
ADDED_SINCE_THE_SPLIT = frozenset({
    "RELAYFLOW_CLAIM_CHECK_DIR", "RELAYFLOW_CLAIM_CHECK_THRESHOLD_BYTES",
    "RELAYFLOW_CLAIM_CHECK_RETENTION_HOURS", "RELAYFLOW_CLAIM_CHECK_S3_ENDPOINT",
    "RELAYFLOW_CLAIM_CHECK_S3_BUCKET", "RELAYFLOW_CLAIM_CHECK_S3_PREFIX",
    "RELAYFLOW_CLAIM_CHECK_S3_REGION", "RELAYFLOW_CLAIM_CHECK_S3_ACCESS_KEY",
    "RELAYFLOW_CLAIM_CHECK_S3_SECRET_KEY", "RELAYFLOW_CLAIM_CHECK_OUTCOME_BYTES",
    "RELAYFLOW_CLAIM_CHECK_OUTCOME_RETENTION_HOURS", "RELAYFLOW_CLAIM_CHECK_SWEEP_SECONDS",
    "RELAYFLOW_CODEC_SERVER_HOSTS", "RELAYFLOW_CODEC_SERVER_MAX_BODY_BYTES",
    "RELAYFLOW_CODEC_SERVER_MAX_CONNECTIONS", "RELAYFLOW_CODEC_SERVER_REQUEST_TIMEOUT_SECONDS",
    "RELAYFLOW_PAYLOAD_ACCEPT_PLAINTEXT_UNTIL",
    "RELAYFLOW_KAFKA_SASL_PLAIN_WITHOUT_TLS", "RELAYFLOW_APPROVAL_THRESHOLDS",
    "RELAYFLOW_MAX_FETCH_BYTES", "RELAYFLOW_MAX_PARTITION_FETCH_BYTES",
    "RELAYFLOW_CONSOLE_SIGNIN_BACKOFF_SECONDS", "RELAYFLOW_BATCH_ITEM_WORK_SECONDS",
    "RELAYFLOW_ENDINGS_SWEEP_SECONDS", "RELAYFLOW_ENDINGS_WINDOW_SECONDS",
    "RELAYFLOW_DECISION_KEY_FILE", "RELAYFLOW_CONSOLE_DECISION_KEY_FILE",
    "RELAYFLOW_APPROVAL_KEYS", "RELAYFLOW_APPROVAL_SIGNATURES",
    "RELAYFLOW_WORKER_DEPLOYMENT_NAME", "RELAYFLOW_WORKER_BUILD_ID",
    "RELAYFLOW_SCHEMA_REGISTRY_SUBJECT_STRATEGY",
    "RELAYFLOW_TEMPORAL_DEV_SERVER",
    "RELAYFLOW_TEMPORAL_KEEPALIVE_INTERVAL_SECONDS", "RELAYFLOW_TEMPORAL_KEEPALIVE_TIMEOUT_SECONDS",
    "RELAYFLOW_BRIDGE_TEMPORAL_CALL_SECONDS", "RELAYFLOW_BRIDGE_SESSION_TIMEOUT_SECONDS",
    "RELAYFLOW_ORDER_STEP_TIMEOUT_SECONDS", "RELAYFLOW_BATCH_CHUNK_HEARTBEAT_TIMEOUT_SECONDS",
})
"""New variables (each documented like the others); none renamed or dropped."""


def variables(settings_class: type[BaseSettings]) -> set[str]:
    return {doc.env for doc in document_settings(settings_class)}


def declaring(settings_class: type[BaseSettings], name: str) -> type:
    """The class of ``settings_class.__mro__`` whose own annotations declare field ``name``."""
    return next(c for c in settings_class.__mro__ if name in inspect.get_annotations(c))


SECTIONS = sorted({declaring(cls, name) for cls in (Settings, ReferenceSettings)
                   for name in cls.model_fields}, key=lambda c: c.__name__)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``RELAYFLOW_*`` variable of this process's environment leaks into a test."""
    for name in VARIABLES_BEFORE_THE_SPLIT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_variable_keeps_its_name_the_reference_ones_in_reference_settings() -> None:
    framework, reference = variables(Settings), variables(ReferenceSettings)
    assert framework == (VARIABLES_BEFORE_THE_SPLIT | ADDED_SINCE_THE_SPLIT) - REFERENCE_ONLY
    # The store's default folder and the secret files are shared, not moved.
    assert reference == REFERENCE_ONLY | {"RELAYFLOW_DATA_DIR", "RELAYFLOW_SECRETS_DIR"}


@pytest.mark.parametrize("settings_class", [Settings, ReferenceSettings])
def test_every_setting_is_documented_by_the_section_that_declares_it(
        settings_class: type[BaseSettings]) -> None:
    docs = document_settings(settings_class)  # the docs generator: raises on a hole
    assert all(doc.description.strip() for doc in docs)
    for name in settings_class.model_fields:
        section = declaring(settings_class, name)
        assert issubclass(section, EnvSettings)
        assert name in docstring_attributes(section), (name, section)


@pytest.mark.parametrize("section", SECTIONS, ids=lambda c: c.__name__)
def test_a_section_documents_only_its_own_fields(section: type[EnvSettings]) -> None:
    own = {name for name in section.model_fields if name in inspect.get_annotations(section)}
    assert set(docstring_attributes(section)) == own


def test_an_undocumented_field_stops_the_reference() -> None:
    class Extra(KafkaSettings):
        """Extra: a section whose second field nobody described.

        Attributes:
            documented: This one is.
        """

        documented: int = 1
        forgotten: int = 2

    with pytest.raises(UndocumentedSettingError, match="forgotten"):
        document_settings(Extra)


def test_importing_config_imports_nothing_else_of_relayflow() -> None:
    # relayflow/__init__.py (the public API) is not run: the package is stubbed, so only
    # what relayflow.config itself imports is loaded.
    script = (
        "import json, sys, types\n"
        "package = types.ModuleType('relayflow')\n"
        f"package.__path__ = [{str(ROOT / 'relayflow')!r}]\n"
        "sys.modules['relayflow'] = package\n"
        "import relayflow.config\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                       capture_output=True, text=True, cwd=ROOT).stdout)
    ours = ("relayflow.", "bridge", "schemas", "activities", "workflows", "failpoints")
    assert [m for m in loaded if m.startswith(ours) and not m.startswith("relayflow.config")] == []
    assert "relayflow.config.settings" in loaded


def test_settings_ignore_the_variables_of_an_application(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RELAYFLOW_CARD_LIMIT_CENTS", "not a number")
    clean_env.setenv("RELAYFLOW_TICKETS_SLA_HOURS", "4")
    assert "card_limit_cents" not in load_settings().model_dump()


def test_reference_settings_read_their_variables(clean_env: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    values = {"RELAYFLOW_APPROVAL_THRESHOLD_CENTS": "100",
              "RELAYFLOW_APPROVAL_TIMEOUT_SECONDS": "60",
              "RELAYFLOW_ESCALATION_TIMEOUT_SECONDS": "120", "RELAYFLOW_APPROVER": "a",
              "RELAYFLOW_ESCALATION_APPROVER": "b", "RELAYFLOW_CARD_LIMIT_CENTS": "5",
              "RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT": "300",
              "RELAYFLOW_STORE_PATH": str(tmp_path / "s.db")}
    for name, value in values.items():
        clean_env.setenv(name, value)
    read = ReferenceSettings.of(Settings())
    assert (read.approval_threshold_cents, read.approval_timeout_seconds,
            read.escalation_timeout_seconds, read.approver, read.escalation_approver,
            read.card_limit_cents, read.batch_history_event_limit, read.store_path) == (
        100, 60, 120, "a", "b", 5, 300, tmp_path / "s.db")
    assert {k: v for k, v in read.as_env().items() if k in values} == values


def test_reference_defaults_and_the_store_beside_the_framework_data_dir(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    read = ReferenceSettings.of(Settings(data_dir=tmp_path))
    assert (read.approval_threshold_cents, read.approval_timeout_seconds,
            read.escalation_timeout_seconds, read.approver, read.escalation_approver,
            read.card_limit_cents, read.batch_history_event_limit) == (
        100_000, 24 * 3600, 24 * 3600, "orders-approvers", "orders-managers", 500_000, 2_000)
    assert read.store_path == tmp_path / "store.db"
    clean_env.setenv("RELAYFLOW_DATA_DIR", str(tmp_path / "env"))
    assert ReferenceSettings().store_path == tmp_path / "env" / "store.db"


def test_a_bad_reference_setting_is_one_line_naming_it(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT", "99")
    with pytest.raises(SettingError) as refused:
        ReferenceSettings.of(Settings())
    assert str(refused.value) == ("RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT: "
                                  "Input should be greater than or equal to 100")


@pytest.mark.parametrize("variable", ["RELAYFLOW_ORDER_STEP_TIMEOUT_SECONDS",
                                      "RELAYFLOW_BATCH_CHUNK_HEARTBEAT_TIMEOUT_SECONDS"])
def test_activity_timeouts_default_to_10_s_and_refuse_less_than_1_s(
        clean_env: pytest.MonkeyPatch, variable: str) -> None:
    assert ReferenceSettings.of(Settings()).activity_timeouts == ActivityTimeouts(
        order_step=timedelta(seconds=10), chunk_heartbeat=timedelta(seconds=10))
    clean_env.setenv(variable, "0.5")
    with pytest.raises(SettingError) as refused:
        ReferenceSettings.of(Settings())
    assert str(refused.value) == f"{variable}: Input should be greater than or equal to 1"


def test_reference_settings_come_from_secret_files_too(clean_env: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    (tmp_path / "RELAYFLOW_APPROVER").write_text("from-a-file\n")
    clean_env.setenv("RELAYFLOW_SECRETS_DIR", str(tmp_path))
    assert ReferenceSettings.of(Settings()).approver == "from-a-file"
    clean_env.setenv("RELAYFLOW_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingError, match=r"RELAYFLOW_SECRETS_DIR: .* is not a folder$"):
        ReferenceSettings()


async def test_the_reference_activities_read_reference_settings(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from activities.outcomes import OutcomePublisher  # noqa: PLC0415
    from relayflow.reference.app import APP  # noqa: PLC0415

    clean_env.setenv("RELAYFLOW_APPROVAL_THRESHOLD_CENTS", "4200")
    clean_env.setenv("RELAYFLOW_APPROVER", "tea-approvers")
    clean_env.setenv("RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT", "150")
    clean_env.setenv("RELAYFLOW_ORDER_STEP_TIMEOUT_SECONDS", "3")
    clean_env.setenv("RELAYFLOW_BATCH_CHUNK_HEARTBEAT_TIMEOUT_SECONDS", "2.5")
    resources = WorkerResources(settings=Settings(data_dir=tmp_path),
                                publisher=OutcomePublisher(FakeProducer(), APP.codec()))
    try:
        built = {getattr(a, "__name__", ""): a for a in reference_activities(resources)}
        # Fixed for this process's workflows as the worker builds its activities.
        assert activity_timeouts() == ActivityTimeouts(
            order_step=timedelta(seconds=3), chunk_heartbeat=timedelta(seconds=2.5))
    finally:
        use_activity_timeouts(ActivityTimeouts())
    policy = await built["approval_policy"](ApprovalPolicyRequest(currency="EUR"))
    assert (policy.threshold_cents, policy.approver) == (4200, "tea-approvers")
    assert (await built["batch_limits"]()).history_event_limit == 150
    batches = getattr(built["batch_limits"], "__self__", None)
    assert isinstance(batches, BatchActivities)
    assert batches._store.path == tmp_path / "store.db"


def test_limits_default_to_the_bridge_own_defaults() -> None:
    bridge = {f.name: f.default for f in dataclasses.fields(BridgeConfig)}
    settings = Settings.model_construct()
    assert (settings.max_header_count, settings.max_header_bytes) == (
        DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_BYTES)
    assert (settings.max_payload_bytes, settings.max_header_count, settings.max_header_bytes,
            settings.bridge_batch_size, settings.bridge_concurrency,
            settings.bridge_signal_hold_seconds, settings.bridge_shutdown_seconds,
            settings.bridge_park_keys, settings.max_fetch_bytes,
            settings.max_partition_fetch_bytes, settings.bridge_temporal_call_seconds,
            settings.bridge_session_timeout_seconds) == (
        bridge["max_payload_bytes"], bridge["max_header_count"], bridge["max_header_bytes"],
        bridge["fetch_max_records"], bridge["concurrency"], bridge["signal_hold_seconds"],
        bridge["shutdown_seconds"], bridge["park_keys"], bridge["fetch_max_bytes"],
        bridge["max_partition_fetch_bytes"], bridge["temporal_call_seconds"],
        bridge["session_timeout_seconds"])


def test_a_section_is_a_settings_class_of_its_own(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RELAYFLOW_PAYLOAD_ENCRYPTION_KEY_ID", "k")
    section = PayloadEncryptionSettings()
    assert section.payload_encryption_key_id == "k"
    with pytest.raises(SettingError, match="_KEY_ID is set but no keys are"):
        payload_codec(section)
    assert payload_codec(PayloadEncryptionSettings(payload_encryption_key_id=None)) is None
    assert "s3cret" not in repr(KafkaSettings(kafka_security_protocol="SASL_SSL",
                                              kafka_sasl_mechanism="PLAIN",
                                              kafka_sasl_username="u",
                                              kafka_sasl_password=SecretStr("s3cret")))
