"""relayflow's settings: every section, composed into one flat ``Settings``.

Every mode (local dev stack, docker compose, an existing cluster) uses the same
``RELAYFLOW_*`` names, so pointing relayflow at another Kafka or Temporal is
only a matter of exporting different values. Each concern is a section class
of its own module (``relayflow.config.kafka``, ``.temporal``, ``.bridge``,
``.devstack``, ``.observability``, ``.operate``); ``Settings`` inherits them
all, so code reads ``settings.kafka_bootstrap_servers`` whatever the section.
Settings build no objects: the composition root (``relayflow.runtime``) does.
"""

from __future__ import annotations

from pydantic import ValidationError, model_validator

from relayflow.config.base import EnvSettings, SettingError, setting_errors
from relayflow.config.bridge import TEMPORAL_PAYLOAD_LIMIT, BridgeSettings, LimitsSettings
from relayflow.config.claim_check import ClaimCheckSettings
from relayflow.config.devstack import DataSettings, DevStackSettings
from relayflow.config.kafka import KafkaSettings, SchemaRegistrySettings
from relayflow.config.observability import ObservabilitySettings
from relayflow.config.operate import ConsoleSettings, OperatorSettings
from relayflow.config.temporal import PayloadEncryptionSettings, TemporalSettings

__all__ = ["ApplicationSettings", "SettingError", "Settings", "get_settings", "load_settings",
           "setting_errors"]


class ApplicationSettings(EnvSettings):
    """Application: which one the bridge and the worker run.

    Attributes:
        app: The application the bridge and the worker run, as
            ``module:attribute`` naming an ``relayflow.application.Application``
            (default: relayflow's own orders, approvals and batches).
    """

    app: str = "relayflow.reference:APP"


class Settings(ApplicationSettings, KafkaSettings, SchemaRegistrySettings, TemporalSettings,
               PayloadEncryptionSettings, ClaimCheckSettings, BridgeSettings, LimitsSettings,
               ObservabilitySettings, OperatorSettings, ConsoleSettings, DataSettings,
               DevStackSettings):
    """All relayflow configuration: the settings of every section, as one flat class.

    Each field is documented in the section class that declares it (the
    configuration reference is generated from those). An application's own settings (the
    reference app's ``ReferenceSettings``) are a class of their own, read
    from the same environment; their variables are ignored here.
    """

    @model_validator(mode="after")
    def _payloads_temporal_accepts(self) -> Settings:
        if not self.claim_check_on and self.max_payload_bytes > TEMPORAL_PAYLOAD_LIMIT:
            raise ValueError(
                f"RELAYFLOW_MAX_PAYLOAD_BYTES: at most {TEMPORAL_PAYLOAD_LIMIT} (Temporal's "
                f"payload limit) unless the claim check is on "
                f"(RELAYFLOW_CLAIM_CHECK_DIR or RELAYFLOW_CLAIM_CHECK_S3_ENDPOINT)")
        return self

    @property
    def codec_server_allowed_origins(self) -> frozenset[str]:
        """Browser origins the codec server answers (CORS)."""
        if self.codec_server_origins is not None:
            return frozenset(o.strip().rstrip("/") for o in self.codec_server_origins.split(",")
                             if o.strip())
        return frozenset(f"http://{host}:{self.temporal_ui_port}"
                         for host in ("localhost", "127.0.0.1"))

    @property
    def temporal_ui_url(self) -> str:
        """URL of the Temporal web UI: ``temporal_ui_base_url``, else the local dev stack's."""
        if self.temporal_ui_base_url:
            return self.temporal_ui_base_url.rstrip("/")
        return f"http://127.0.0.1:{self.temporal_ui_port}"


def get_settings() -> Settings:
    """Read settings from the environment (a fresh read each call)."""
    return Settings()


def load_settings(**update: object) -> Settings:
    """Read settings from the environment, then apply ``update``.

    Raises:
        SettingError: Some setting is bad; one line per problem, naming its variable.
    """
    try:
        return Settings(**update)  # type: ignore[arg-type]  # validated like the environment
    except ValidationError as error:
        raise SettingError("\n".join(setting_errors(error))) from None
