"""Configuration: relayflow's settings, read from ``RELAYFLOW_*`` environment variables.

A leaf of ``relayflow``: it imports nothing else of relayflow's and builds no
client; the composition root (``relayflow.runtime``) turns settings into objects.
``Settings`` composes one section class per concern (``kafka``, ``temporal``,
``bridge``, ``devstack``, ``observability``, ``operate``); an application's own
settings derive from ``EnvSettings`` and read the same environment the same way.
"""

from relayflow.config.base import EnvSettings, SettingError, setting_errors
from relayflow.config.bridge import MIN_HEADER_BYTES, MIN_HEADER_COUNT
from relayflow.config.kafka import KafkaSaslMechanism, KafkaSecurityProtocol
from relayflow.config.settings import Settings, get_settings, load_settings

__all__ = ["MIN_HEADER_BYTES", "MIN_HEADER_COUNT", "EnvSettings", "KafkaSaslMechanism",
           "KafkaSecurityProtocol", "SettingError", "Settings", "get_settings", "load_settings",
           "setting_errors"]
