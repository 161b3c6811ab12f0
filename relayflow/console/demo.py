"""The console in ``relayflow demo``: served beside the demo, with a demo user, until Ctrl-C.

Without configured users (``RELAYFLOW_CONSOLE_USERS_FILE`` / ``_USERS``) the
demo makes one, ``demo``, in every role (both approver groups and
``operator``) with a random password that is printed, never logged. Once the
demo's orders are done it places one more order that waits for approval, so
the inbox has something to decide, and keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

from relayflow.config.settings import SettingError, Settings
from relayflow.console.app import running_console
from relayflow.console.users import OPERATOR, UserDirectory, hash_password, load_users
from relayflow.kafka.clients import KafkaClients
from relayflow.reference.events import OrderLine, OrderPlaced
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import event_codec
from schemas.framing import to_record

__all__ = ["DEMO_USER", "DemoConsole", "demo_console", "demo_users"]

DEMO_USER = "demo"
"""The demo user's name."""


def demo_users(settings: Settings) -> tuple[UserDirectory, str | None]:
    """The configured users, or a ``demo`` user in every role and its new password."""
    if settings.console_users_file is not None or settings.console_users is not None:
        return load_users(settings), None
    password = secrets.token_urlsafe(9)
    reference = ReferenceSettings.of(settings)
    roles = frozenset({reference.approver, reference.escalation_approver, OPERATOR})
    return UserDirectory({DEMO_USER: (roles, hash_password(password))}), password


class DemoConsole:
    """The demo's running console.

    Args:
        settings: The demo's settings.
        url: Where the console serves.
        say: Prints a line for the person running the demo.
    """

    def __init__(self, settings: Settings, url: str, say: Callable[[str], object]) -> None:
        self.settings = settings
        self.url = url
        self._say = say

    async def place_order_to_approve(self) -> str:
        """Send an order at the approval threshold; returns its id."""
        order_id = f"console-{secrets.token_hex(3)}"
        price = ReferenceSettings.of(self.settings).approval_threshold_cents
        order = OrderPlaced(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                            order_id=order_id, customer_id="customer-42",
                            items=(OrderLine(sku="SKU-LAMP", quantity=1, unit_price_cents=price),),
                            amount_cents=price)
        record = to_record(order, event_codec(self.settings))
        async with KafkaClients(self.settings).started_producer() as producer:
            await producer.send_and_wait(ORDERS_EVENTS, record.value, key=record.key,
                                         headers=record.headers)
        return order_id

    async def linger(self, services: Iterable[asyncio.Task[None]]) -> None:
        """Place an order to approve, then serve until Ctrl-C (or a service stops)."""
        order_id = await self.place_order_to_approve()
        self._say(f"order {order_id} waits for your approval: {self.url}/approvals "
                  "(Ctrl-C stops the demo; the stack keeps running)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waiting = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([waiting, *services], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def demo_console(settings: Settings,
                       say: Callable[[str], object]) -> AsyncIterator[DemoConsole | None]:
    """The console served for the demo, its URL and sign-in printed; None if it cannot listen."""
    users, password = demo_users(settings)
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(running_console(settings, users=users))
        except SettingError as error:  # e.g. the port is taken: the demo runs without it
            say(f"[yellow]no console: {error}[/yellow]")
            yield None
            return
        say(f"console: {url}" + (f"  user [bold]{DEMO_USER}[/bold]  password "
                                 f"[bold]{password}[/bold]" if password else ""))
        yield DemoConsole(settings, url, say)
