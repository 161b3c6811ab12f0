"""The reference application's own settings: approvals, the card limit, batches and its store.

Read from the same ``RELAYFLOW_*`` environment as relayflow's ``Settings``
(and the files of ``RELAYFLOW_SECRETS_DIR``), which ignores them: they mean
something only to this application's activities and tools.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, ValidationError, field_validator

from relayflow.config import SettingError, setting_errors
from relayflow.config.devstack import DataSettings
from relayflow.reference.currencies import is_currency
from relayflow.reference.timeouts import ActivityTimeouts

if TYPE_CHECKING:
    from relayflow.config import Settings

__all__ = ["DEV_REGISTRY", "ReferenceSettings", "parse_thresholds"]

DEV_REGISTRY = "approval-keys.json"
"""The registry of trusted approver keys under ``data_dir`` (the dev stack's)."""

_DEFAULT_TIMEOUTS = ActivityTimeouts()
"""The workflows' own defaults (a process no worker configured): the settings' too."""


def parse_thresholds(text: str) -> dict[str, int]:
    """``USD=110000,JPY=15000000`` as ``{"USD": 110000, "JPY": 15000000}``.

    Raises:
        ValueError: A pair is malformed, names no ISO 4217 currency or twice the
            same one, or its amount is not a whole number of at least 0.
    """
    thresholds: dict[str, int] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        code, equals, amount = (part.strip() for part in pair.partition("="))
        if not equals or not amount.isdigit():
            raise ValueError(f"{pair!r} is not CODE=AMOUNT (a whole number of minor units)")
        if not is_currency(code):
            raise ValueError(f"{code!r} is not an ISO 4217 currency code")
        if code in thresholds:
            raise ValueError(f"{code} is given twice")
        thresholds[code] = int(amount)
    return thresholds


class ReferenceSettings(DataSettings):
    """Reference app: its business rules and the SQLite store of its activities.

    Attributes:
        approval_threshold_cents: Orders in EUR at or above this amount need a
            person's approval before payment (the EUR threshold, unless
            ``approval_thresholds`` names EUR).
        approval_thresholds: Thresholds of other currencies, in their own
            minor units, as ``CODE=AMOUNT`` pairs separated by commas (e.g.
            ``USD=110000,JPY=15000000``); each code must be ISO 4217. Amounts are
            never converted: every order in a currency not named here (nor EUR
            by ``approval_threshold_cents``) needs approval.
        approval_timeout_seconds: Wait for the first approver before escalating.
        escalation_timeout_seconds: Wait for the escalation approver before the
            order fails with ``approval_timed_out``.
        approver: Who decides first (named in ``ApprovalRequested``).
        escalation_approver: Who decides after escalation.
        card_limit_cents: Charges above this amount are declined by the
            reference payment activity (a deterministic failure hook).
        batch_history_event_limit: ``BatchWorkflow`` continues as new once its
            history passes this many events (or when the server suggests it).
        batch_item_work_seconds: Time the reference batch activity spends on
            each item besides its store write (0: none), a stand-in for real
            work so a chunk's heartbeats, pause and resume can be watched.
        order_step_timeout_seconds: Start-to-close timeout of each ``OrderSaga``
            step and compensation: how long Temporal waits for one whose worker
            died before retrying it on another. Steps take milliseconds; fixed
            for a worker when it starts (workers may differ: an activity's
            timeout is not part of a workflow's replay).
        batch_chunk_heartbeat_timeout_seconds: Heartbeat timeout of a batch
            chunk's ``process_items``: how long Temporal waits for the heartbeat
            of one whose worker died before retrying it from its last
            heartbeat. The SDK sends heartbeats at most every 0.8 x this;
            fixed for a worker when it starts, like the step timeout.
        store_path_override: ``RELAYFLOW_STORE_PATH``: the SQLite file of the
            reference system's store (inventory, payments, shipments), read as
            ``store_path``; default ``<data_dir>/store.db``.
        approval_keys_override: ``RELAYFLOW_APPROVAL_KEYS``: the JSON registry
            of approver public keys the sagas trust (``{"keys": [{"key_id",
            "public_key", "acts_for", "not_before", "not_after"}]}``), read as
            ``approval_keys``; re-read by the worker when it changes (rotation,
            revocation); default ``<data_dir>/approval-keys.json`` (the dev
            stack's) when it exists, else no key is trusted.
        approval_signatures: ``required`` (default): a decision counts only when
            signed by a registered key that may act for its ``decided_by``.
            ``off``: unsigned decisions count when their ``decided_by`` was asked
            (development only; the worker warns at start); signed ones are
            still verified.
    """

    approval_threshold_cents: int = Field(default=100_000, ge=0)
    approval_thresholds: str = ""
    approval_timeout_seconds: int = 24 * 3600
    escalation_timeout_seconds: int = 24 * 3600
    approver: str = "orders-approvers"
    escalation_approver: str = "orders-managers"
    card_limit_cents: int = 500_000
    batch_history_event_limit: int = Field(default=2_000, ge=100)
    batch_item_work_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    order_step_timeout_seconds: float = Field(
        default=_DEFAULT_TIMEOUTS.order_step.total_seconds(), ge=1.0, le=3600.0)
    batch_chunk_heartbeat_timeout_seconds: float = Field(
        default=_DEFAULT_TIMEOUTS.chunk_heartbeat.total_seconds(), ge=1.0, le=3600.0)
    store_path_override: Path | None = Field(default=None, alias="RELAYFLOW_STORE_PATH")
    approval_keys_override: Path | None = Field(default=None, alias="RELAYFLOW_APPROVAL_KEYS")
    approval_signatures: Literal["required", "off"] = "required"

    @classmethod
    def of(cls, settings: Settings, **update: object) -> Self:
        """The reference app's settings beside relayflow's ``settings``: its store in its data_dir.

        Args:
            settings: relayflow's settings of this process.
            **update: Settings given in code (they win over the environment).

        Raises:
            SettingError: Some setting is bad; one line per problem, naming its variable.
        """
        try:
            return cls(**{"data_dir": settings.data_dir, **update})  # type: ignore[arg-type]
        except ValidationError as error:
            raise SettingError("\n".join(setting_errors(error))) from None

    @field_validator("approval_thresholds")
    @classmethod
    def _thresholds_parse(cls, text: str) -> str:
        parse_thresholds(text)
        return text

    @property
    def thresholds_cents(self) -> dict[str, int]:
        """ISO 4217 code → approval threshold: ``approval_thresholds`` and EUR's."""
        return {"EUR": self.approval_threshold_cents, **parse_thresholds(self.approval_thresholds)}

    @property
    def approval_keys(self) -> Path | None:
        """The trusted keys' registry file, or None when none is configured nor made."""
        if self.approval_keys_override is not None:
            return self.approval_keys_override
        dev = self.data_dir / DEV_REGISTRY
        return dev if dev.is_file() else None

    @cached_property
    def store_path(self) -> Path:
        """SQLite file of the reference store."""
        return self.store_path_override or self.data_dir / "store.db"

    @property
    def activity_timeouts(self) -> ActivityTimeouts:
        """The reference workflows' activity timeouts these settings give."""
        return ActivityTimeouts(
            order_step=timedelta(seconds=self.order_step_timeout_seconds),
            chunk_heartbeat=timedelta(seconds=self.batch_chunk_heartbeat_timeout_seconds))

    def as_env(self) -> dict[str, str]:
        """The ``RELAYFLOW_*`` variables that give a child process exactly these settings.

        The store's file is passed as such, so the child uses the same one
        whatever its ``data_dir``.
        """
        keys = self.approval_keys
        return {**super().as_env(), "RELAYFLOW_STORE_PATH": str(self.store_path),
                **({"RELAYFLOW_APPROVAL_KEYS": str(keys)} if keys is not None else {})}
