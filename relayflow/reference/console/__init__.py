"""The reference application's pages in relayflow's console: approvals inbox, orders, batches.

``REFERENCE_PAGES`` is the ``relayflow.console.ConsolePages`` extension the
reference ``Application`` lists. The pages and their readers (``inbox``,
``timeline``, ``batches``) are imported when a console is built, not with
the application.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayflow.console.extension import APPROVERS, EVERYONE, NavEntry
from relayflow.reference.settings import ReferenceSettings

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from relayflow.config.settings import Settings
    from relayflow.console.web import Console

__all__ = ["REFERENCE_PAGES", "ReferencePages", "money"]


def money(cents: int, currency: str = "EUR") -> str:
    """``1,000.00 EUR``: an amount in cents, for the templates."""
    return f"{cents // 100:,}.{cents % 100:02d} {currency}"


@dataclass(frozen=True)
class ReferencePages:
    """The approvals inbox (approvers), orders and batches (everyone signed in).

    Attributes:
        nav: Approvals, Orders, Batches.
        template_folder: ``templates/`` beside this module.
        template_filters: ``money``.
    """

    nav: Sequence[NavEntry] = (NavEntry("Approvals", "/approvals", APPROVERS),
                               NavEntry("Orders", "/orders", EVERYONE),
                               NavEntry("Batches", "/batches", EVERYONE))
    template_folder: Path = Path(__file__).parent / "templates"
    template_filters: Mapping[str, Callable[..., Any]] = field(
        default_factory=lambda: {"money": money})

    def routes(self, console: Console) -> Sequence[BaseRoute]:
        """The pages' routes, around readers built for ``console``."""
        from relayflow.reference.console import approvals, batch_pages, orders  # noqa: PLC0415
        from relayflow.reference.console.context import ReferenceConsole  # noqa: PLC0415

        ref = ReferenceConsole.around(console)
        return [*approvals.routes(ref), *orders.routes(ref), *batch_pages.routes(ref)]

    def demo_roles(self, settings: Settings) -> frozenset[str]:
        """Both approver groups, so the demo's user decides at either stage."""
        reference = ReferenceSettings.of(settings)
        return frozenset({reference.approver, reference.escalation_approver})

    async def demo_welcome(self, settings: Settings, url: str) -> str | None:
        """Place an order at the approval threshold, so the inbox has something to decide."""
        from relayflow.kafka.sends import send_event  # noqa: PLC0415
        from relayflow.reference.app import APP  # noqa: PLC0415
        from relayflow.reference.events import OrderLine, OrderPlaced  # noqa: PLC0415
        from relayflow.reference.topics import ORDERS_EVENTS  # noqa: PLC0415
        from relayflow.runtime.bootstrap import event_codec  # noqa: PLC0415
        from relayflow.runtime.clients import kafka_clients  # noqa: PLC0415

        order_id = f"console-{secrets.token_hex(3)}"
        price = ReferenceSettings.of(settings).thresholds_cents["EUR"]  # an EUR order
        order = OrderPlaced(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                            order_id=order_id, customer_id="customer-42",
                            items=(OrderLine(sku="SKU-LAMP", quantity=1, unit_price_cents=price),),
                            amount_cents=price)
        async with kafka_clients(settings).started_producer() as producer:
            await send_event(producer, event_codec(settings, APP), order, ORDERS_EVENTS)
        return f"order {order_id} waits for your approval: {url}/approvals"


REFERENCE_PAGES = ReferencePages()
"""The extension the reference application lists."""
