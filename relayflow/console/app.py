"""The console's Starlette application, and serving it.

``create_app`` wires the pages, the static files (htmx, vendored; the
stylesheet and the countdown script), signed-cookie sessions and security
headers around a connected ``Console``. ``running_console`` connects
Temporal and Kafka, binds the port and serves until the block ends; the
``relayflow console`` command, ``relayflow run --console``, the demo and the
tests all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relayflow.config.settings import SettingError, Settings
from relayflow.console.batches import BatchSizes
from relayflow.console.inbox import Orders
from relayflow.console.pages import approvals, auth, batches, dead_letters, orders
from relayflow.console.sessions import SESSION_COOKIE
from relayflow.console.throttle import SignInThrottle
from relayflow.console.users import UserDirectory, load_users
from relayflow.console.web import Console, error_handlers
from relayflow.kafka.clients import KafkaClients
from relayflow.reference.activities.store import Store
from relayflow.reference.settings import ReferenceSettings
from relayflow.runtime.bootstrap import event_codec, wait_for_temporal

__all__ = ["console_url", "create_app", "listening_socket", "running_console"]

log = logging.getLogger(__name__)

_STATIC = Path(__file__).parent / "static"
_EXPIRED_SESSION_GRACE = 24 * 3600
"""The cookie outlives the sign-in by this much, so an expired sign-in can be named as such."""
_HEADERS = [
    (b"content-security-policy",
     (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class _SecurityHeaders:
    """Adds the security headers to every answer: scripts and styles of the console only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(console: Console) -> Starlette:
    """The console's web application around connected clients."""
    settings = console.settings
    key = settings.console_secret_key
    if key is None:
        log.warning("console: RELAYFLOW_CONSOLE_SECRET_KEY is not set; signing sessions with a "
                    "random key (everyone signs in again when the console restarts)")
    app = Starlette(
        routes=[*auth.ROUTES, *approvals.ROUTES, *orders.ROUTES, *batches.ROUTES,
                *dead_letters.ROUTES, Mount("/static", StaticFiles(directory=_STATIC),
                                            name="static")],
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(SessionMiddleware,
                       secret_key=key.get_secret_value() if key else secrets.token_urlsafe(32),
                       session_cookie=SESSION_COOKIE,
                       max_age=settings.console_session_seconds + _EXPIRED_SESSION_GRACE,
                       same_site="lax", https_only=settings.console_secure_cookies),
        ],
        exception_handlers=error_handlers(),
    )
    app.state.console = console
    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port), before anything else starts.

    Raises:
        SettingError: The address cannot be bound; names ``RELAYFLOW_CONSOLE_PORT``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SettingError(f"RELAYFLOW_CONSOLE_PORT: cannot listen on {host}:{port}: "
                           f"{error.strerror or error} (RELAYFLOW_CONSOLE_HOST / "
                           "RELAYFLOW_CONSOLE_PORT)") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def console_url(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104 - compared, not bound
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, leaving signals to the process that runs it, telling when it serves."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.serving = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.serving.set()


@contextlib.asynccontextmanager
async def running_console(settings: Settings, *, users: UserDirectory | None = None,
                          ) -> AsyncIterator[str]:
    """The console served while the block runs; yields its URL.

    Users are loaded and the port is bound first, so bad settings stop it
    before anything connects; then it waits for Temporal (with backoff) and
    starts its Kafka producer.

    Args:
        settings: Everything the console needs (``console_*`` and the connections).
        users: Who may sign in (default: ``load_users(settings)``).

    Raises:
        SettingError: Unusable users, or the port cannot be bound.
    """
    users = users if users is not None else load_users(settings)
    sock = listening_socket(settings.console_host, settings.console_port)
    try:
        client = await wait_for_temporal(settings)
        reference = ReferenceSettings.of(settings)
        store = Store(reference.store_path, card_limit_cents=reference.card_limit_cents)
        async with KafkaClients(settings).started_producer() as producer:
            console = Console(settings, users, client, producer, event_codec(settings), store,
                              Orders(client), BatchSizes(client),
                              SignInThrottle.from_settings(settings))
            # No access log: every open inbox polls every 2 s. No proxy headers: the
            # client address (failed sign-ins count per address) is the socket's peer.
            server = _Server(uvicorn.Config(create_app(console), log_config=None,
                                            lifespan="off", server_header=False,
                                            access_log=False, proxy_headers=False))
            serving = asyncio.create_task(server.serve(sockets=[sock]), name="console")
            try:
                ready = asyncio.ensure_future(server.serving.wait())
                await asyncio.wait([ready, serving], return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()
                if serving.done():
                    serving.result()  # raises what stopped it
                log.info("console serving on %s", console_url(sock))
                yield console_url(sock)
            finally:
                server.should_exit = True
                await serving
    finally:
        sock.close()
