"""The reference application's own settings: approvals, the card limit, batches and its store.

Read from the same ``RELAYFLOW_*`` environment as relayflow's ``Settings``
(and the files of ``RELAYFLOW_SECRETS_DIR``), which ignores them: they mean
something only to this application's activities and tools.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field, ValidationError

from relayflow.config import SettingError, setting_errors
from relayflow.config.devstack import DataSettings

if TYPE_CHECKING:
    from relayflow.config import Settings

__all__ = ["ReferenceSettings"]


class ReferenceSettings(DataSettings):
    """Reference app: its business rules and the SQLite store of its activities.

    Attributes:
        approval_threshold_cents: Orders at or above this amount need a
            person's approval before payment.
        approval_timeout_seconds: Wait for the first approver before escalating.
        escalation_timeout_seconds: Wait for the escalation approver before the
            order fails with ``approval_timed_out``.
        approver: Who decides first (named in ``ApprovalRequested``).
        escalation_approver: Who decides after escalation.
        card_limit_cents: Charges above this amount are declined by the
            reference payment activity (a deterministic failure hook).
        batch_history_event_limit: ``BatchWorkflow`` continues as new once its
            history passes this many events (or when the server suggests it).
        store_path_override: ``RELAYFLOW_STORE_PATH``: the SQLite file of the
            reference system's store (inventory, payments, shipments), read as
            ``store_path``; default ``<data_dir>/store.db``.
    """

    approval_threshold_cents: int = 100_000
    approval_timeout_seconds: int = 24 * 3600
    escalation_timeout_seconds: int = 24 * 3600
    approver: str = "orders-approvers"
    escalation_approver: str = "orders-managers"
    card_limit_cents: int = 500_000
    batch_history_event_limit: int = Field(default=2_000, ge=100)
    store_path_override: Path | None = Field(default=None, alias="RELAYFLOW_STORE_PATH")

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

    @cached_property
    def store_path(self) -> Path:
        """SQLite file of the reference store."""
        return self.store_path_override or self.data_dir / "store.db"

    def as_env(self) -> dict[str, str]:
        """The ``RELAYFLOW_*`` variables that give a child process exactly these settings.

        The store's file is passed as such, so the child uses the same one
        whatever its ``data_dir``.
        """
        return {**super().as_env(), "RELAYFLOW_STORE_PATH": str(self.store_path)}
