"""Configuration: relayflow's settings, read from ``RELAYFLOW_*`` environment variables.

A leaf of ``relayflow``: it imports nothing else of relayflow's and builds no
client; the composition root (``relayflow.runtime``) turns settings into objects.
"""

from relayflow.config.settings import (
    MIN_HEADER_BYTES,
    MIN_HEADER_COUNT,
    KafkaSaslMechanism,
    KafkaSecurityProtocol,
    SettingError,
    Settings,
    get_settings,
    load_settings,
    setting_errors,
)

__all__ = ["MIN_HEADER_BYTES", "MIN_HEADER_COUNT", "KafkaSaslMechanism", "KafkaSecurityProtocol",
           "SettingError", "Settings", "get_settings", "load_settings", "setting_errors"]
