"""How soon a broken link to Temporal is noticed: keep-alive and the bridge's per-call bound.

What the settings buy against a real hung or cut link is ``tests/faults/test_temporal_link.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import KeepAliveConfig

from bridge.config import BridgeConfig
from relayflow.config.settings import Settings
from relayflow.runtime.bootstrap import bridge_config
from relayflow.runtime.clients import connect_temporal


async def test_every_client_pings_its_connection_as_the_settings_say(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    async def connect(*args: object, **options: Any) -> None:
        del args
        asked.update(options)

    monkeypatch.setattr(Client, "connect", connect)
    await connect_temporal(Settings(temporal_keepalive_interval_seconds=2,
                                    temporal_keepalive_timeout_seconds=3.5))
    assert asked["keep_alive_config"] == KeepAliveConfig(interval_millis=2000,
                                                         timeout_millis=3500)
    await connect_temporal(Settings())  # the SDK's own defaults unless told otherwise
    assert asked["keep_alive_config"] == KeepAliveConfig.default


def test_the_bridge_bounds_each_temporal_call_as_the_settings_say() -> None:
    assert bridge_config(Settings()).temporal_call_seconds == \
        BridgeConfig("g", "q").temporal_call_seconds == 10.0
    config = bridge_config(Settings(bridge_temporal_call_seconds=2.5))
    assert timedelta(seconds=config.temporal_call_seconds) == timedelta(seconds=2.5)


@pytest.mark.parametrize("setting", ["temporal_keepalive_interval_seconds",
                                     "temporal_keepalive_timeout_seconds",
                                     "bridge_temporal_call_seconds"])
@pytest.mark.parametrize("value", [0, -1, 100_000])
def test_a_bound_out_of_range_is_refused(setting: str, value: float) -> None:
    with pytest.raises(ValidationError, match=setting):
        Settings.model_validate({setting: value})
