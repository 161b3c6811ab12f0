"""The console's Starlette application, and serving it.

``create_app`` wires the pages (the console's own, and the configured
application's ``ConsolePages`` if it has them), the static files (htmx,
vendored; the stylesheet and the countdown script), signed-cookie sessions
and security headers around a connected ``Console``. Every page needs a
signed-in user with a role (``PUBLIC`` lists the exceptions); every answer
but a static file says ``Cache-Control: no-store``; HSTS is sent when the
client spoke HTTPS (to the console, or to a trusted proxy in front of it). ``running_console``
loads the application, connects Temporal and Kafka, binds the port and
serves until the block ends; the ``relayflow console`` command,
``relayflow run --console``, the demo and the tests all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from relayflow.application import load_application
from relayflow.config.settings import SettingError, Settings
from relayflow.console.extension import (
    APPROVERS,
    EVERYONE,
    NavEntry,
    console_pages,
    has_role,
    role_of,
)
from relayflow.console.forwarded import is_https
from relayflow.console.pages import activities, auth, dead_letters, status
from relayflow.console.sessions import SESSION_COOKIE, Forbidden
from relayflow.console.throttle import SignInThrottle
from relayflow.console.users import UserDirectory, load_users
from relayflow.console.web import Console, error_handlers, signed_in, templates_for
from relayflow.runtime.bootstrap import event_codec, wait_for_temporal
from relayflow.runtime.clients import kafka_clients

__all__ = ["PUBLIC", "build_console", "console_url", "create_app", "listening_socket",
           "running_console"]

log = logging.getLogger(__name__)

_STATIC = Path(__file__).parent / "static"
_EXPIRED_SESSION_GRACE = 24 * 3600
"""The cookie outlives the sign-in by this much, so an expired sign-in can be named as such."""
PUBLIC = (("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/static/..."))
"""What needs no role: the sign-in form and its post, signing out (which needs the session's
CSRF token), and the static files (htmx, the stylesheet, the countdown script)."""
_STATIC_PATH = "/static"
_HSTS = (b"strict-transport-security", b"max-age=31536000")
_NO_STORE = (b"cache-control", b"no-store")
_HEADERS = [
    (b"content-security-policy",
     (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class _SecurityHeaders:
    """Adds the security headers to every answer: scripts and styles of the console only.

    Every answer but a static file is ``no-store`` (pages name people and orders, and
    carry the session's CSRF token); HSTS when the client spoke HTTPS.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = [*_HEADERS]
        if not str(scope.get("path", "")).startswith(f"{_STATIC_PATH}/"):
            extra.append(_NO_STORE)
        if scope["type"] == "http" and is_https(scope, self.settings):
            extra.append(_HSTS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() != _NO_STORE[0] or _NO_STORE not in extra]
                message["headers"] = [*kept, *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _on_loopback(settings: Settings) -> bool:
    host = settings.console_host
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Sessions:
    """Signed-cookie sessions whose cookie is ``Secure`` unless plain HTTP on loopback may drop it.

    Secure by default; not Secure only for a plain-HTTP request to a console listening on
    loopback (development), or when ``RELAYFLOW_CONSOLE_SECURE_COOKIES=false``.
    """

    def __init__(self, app: ASGIApp, settings: Settings, secret_key: str) -> None:
        age = settings.console_session_seconds + _EXPIRED_SESSION_GRACE
        self.secure, self.plain = (
            SessionMiddleware(app, secret_key, session_cookie=SESSION_COOKIE, max_age=age,
                              same_site="lax", https_only=https_only)
            for https_only in (True, False))
        self.settings = settings
        self.plain_allowed = settings.console_secure_cookies is False or (
            settings.console_secure_cookies is None and _on_loopback(settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain = self.plain_allowed and (self.settings.console_secure_cookies is False
                                        or not is_https(scope, self.settings))
        await (self.plain if plain else self.secure)(scope, receive, send)


_WHO = {APPROVERS: "approvers (users in an approver group)", EVERYONE: "users with a role"}


def _needing_role(route: BaseRoute, nav: Sequence[NavEntry]) -> BaseRoute:
    """``route`` refusing anyone without the role of its navigation entry (any role if none)."""
    if not isinstance(route, Route):
        raise TypeError(f"console: {route!r} is not a starlette Route: every console page must "
                        "be one, so that it needs a role")
    if {(method, route.path) for method in route.methods or ()} <= set(PUBLIC) | {
            ("HEAD", "/login")}:
        return route
    role = role_of(route.path, nav)
    endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint

    async def needing_role(request: Request) -> Response:
        user = signed_in(request)
        if not has_role(user, role):
            raise Forbidden(f"This page is for {_WHO.get(role, f'the {role} role')}; "
                            f"{user.name} has {', '.join(sorted(user.roles)) or 'no role'}.")
        return await endpoint(request)

    return Route(route.path, needing_role, methods=route.methods, name=route.name)


class _ConsoleApp(Starlette):
    """Starlette with the security headers outside everything else, its 500 answer included.

    Starlette puts its ``ServerErrorMiddleware``, which answers an unhandled
    error with 500, outside the application's own middleware: headers added
    there would miss that answer, so they are added around the whole stack.
    """

    def __init__(self, settings: Settings, **options: Any) -> None:
        self._settings = settings
        super().__init__(**options)

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack inside ``_SecurityHeaders``."""
        return _SecurityHeaders(super().build_middleware_stack(), self._settings)


def create_app(console: Console) -> Starlette:
    """The console's web application around connected clients.

    Raises:
        TypeError: A page of the application's ``ConsolePages`` is not a ``Route``.
    """
    settings = console.settings
    key = settings.console_secret_key
    if key is None:
        log.warning("console: RELAYFLOW_CONSOLE_SECRET_KEY is not set; signing sessions with a "
                    "random key")
    if settings.console_secure_cookies is False:
        log.warning("console: RELAYFLOW_CONSOLE_SECURE_COOKIES=false: session cookies are "
                    "never Secure; not for production")
    elif settings.console_secure_cookies is None and _on_loopback(settings):
        log.info("console: session cookies are not Secure over plain HTTP on loopback "
                 "(development); over HTTPS, or behind a TLS proxy, they are")
    own = console.pages.routes(console) if console.pages is not None else ()
    app = _ConsoleApp(
        settings,
        routes=[*(_needing_role(r, console.page_roles) for r in [*auth.ROUTES, *own,
                                                           *dead_letters.ROUTES,
                                                           *activities.ROUTES,
                                                           *status.ROUTES]),
                Mount(_STATIC_PATH, StaticFiles(directory=_STATIC), name="static")],
        middleware=[
            Middleware(_Sessions, settings=settings,
                       secret_key=key.get_secret_value() if key else secrets.token_urlsafe(32)),
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


def build_console(settings: Settings, users: UserDirectory, client: Client,
                  producer: AIOKafkaProducer) -> Console:
    """The ``Console`` of ``settings.app`` around the clients (connected, or connected on use)."""
    application = load_application(settings.app)
    pages = console_pages(application)
    return Console(settings, application, users, client, producer,
                   event_codec(settings, application), SignInThrottle.from_settings(settings),
                   pages, templates_for(pages))


@contextlib.asynccontextmanager
async def running_console(settings: Settings, *, users: UserDirectory | None = None,
                          ) -> AsyncIterator[str]:
    """The console served while the block runs; yields its URL.

    The application (``settings.app``) and the users are loaded and the port
    is bound first, so bad settings stop it before anything connects; then it
    waits for Temporal (with backoff) and starts its Kafka producer.

    Args:
        settings: Everything the console needs (``console_*``, the
            connections, ``app``).
        users: Who may sign in (default: ``load_users(settings)``).

    Raises:
        SettingError: Unusable users, or the port cannot be bound.
    """
    users = users if users is not None else load_users(settings)
    load_application(settings.app)  # a bad app stops it here, before anything connects
    sock = listening_socket(settings.console_host, settings.console_port)
    try:
        client = await wait_for_temporal(settings)
        async with kafka_clients(settings).started_producer() as producer:
            console = build_console(settings, users, client, producer)
            # No access log: every open inbox polls every 2 s. No proxy headers here: the
            # console reads them itself, from trusted proxies only (forwarded.py).
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
