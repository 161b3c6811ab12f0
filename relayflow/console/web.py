"""What every page shares: the console's clients, rendering, and how refusals look.

``Console`` holds what the lifespan connected (the Temporal client, the
Kafka producer) and what was loaded at start (users, codec, store).
``page`` renders a template with the signed-in user, the CSRF token and the
navigation; the exception handlers turn a missing sign-in, a refusal or bad
input into a page (or an htmx fragment) that says what happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiokafka import AIOKafkaProducer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from temporalio.client import Client

from relayflow.config.settings import Settings
from relayflow.console.batches import BatchSizes
from relayflow.console.inbox import Orders
from relayflow.console.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Forbidden,
    SignInRequired,
    UntrustedProxy,
    check_csrf,
    csrf_token,
    current_user,
)
from relayflow.console.throttle import SignInThrottle
from relayflow.console.users import User, UserDirectory
from relayflow.reference.activities.store import Store
from schemas.codec import AvroCodec

__all__ = [
    "TEMPLATES",
    "BadInput",
    "Console",
    "console",
    "error_handlers",
    "is_htmx",
    "page",
    "posted",
    "signed_in",
]

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
"""The console's Jinja templates (autoescaped)."""


def _money(cents: int, currency: str = "EUR") -> str:
    return f"{cents // 100:,}.{cents % 100:02d} {currency}"


TEMPLATES.env.filters["money"] = _money


class BadInput(ValueError):
    """A request the console cannot act on as given (unknown id, malformed field); nothing changed.

    Attributes:
        status: HTTP status of the answer (400, or 404 for something that does not exist).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Console:
    """What the pages work with.

    Attributes:
        settings: The settings the console runs with.
        users: Who may sign in.
        client: Connected Temporal client.
        producer: Started Kafka producer (decisions only).
        codec: Encodes and decodes the contract's events.
        store: The reference store (batch failures).
        orders: The order behind each saga, read once.
        sizes: The size of each batch, read once.
        throttle: Failed sign-ins, and who is locked out.
    """

    settings: Settings
    users: UserDirectory
    client: Client
    producer: AIOKafkaProducer
    codec: AvroCodec
    store: Store
    orders: Orders
    sizes: BatchSizes
    throttle: SignInThrottle

    @property
    def temporal_ui_url(self) -> str:
        """Base URL of the Temporal UI (no trailing slash)."""
        return self.settings.temporal_ui_url.rstrip("/")


def console(request: Request) -> Console:
    """The running console."""
    found: Console = request.app.state.console
    return found


def signed_in(request: Request, role: str | None = None) -> User:
    """The signed-in user (with ``role``, if given); see ``sessions.current_user``."""
    c = console(request)
    return current_user(request, c.users, c.settings, role=role)


async def posted(request: Request, role: str | None = None) -> tuple[User, dict[str, str]]:
    """The user and the form of a POST whose CSRF token is this session's.

    Raises:
        SignInRequired: Nobody is signed in.
        Forbidden: The token is wrong, or the user lacks ``role``.
    """
    user = signed_in(request, role)
    await check_csrf(request)
    form = await request.form()
    return user, {k: v for k, v in form.items() if isinstance(v, str)}


def is_htmx(request: Request) -> bool:
    """The request came from htmx (answer with a fragment)."""
    return request.headers.get("HX-Request") == "true"


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """Render ``template`` with the user (if any), the CSRF token and the navigation."""
    user = context.pop("user", None)
    if user is None:
        try:
            user = signed_in(request)
        except (SignInRequired, Forbidden):
            user = None
    return TEMPLATES.TemplateResponse(request, template, {
        "user": user, "csrf_token": csrf_token(request), "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER, **context}, status_code=status)


def _message(request: Request, status: int, title: str, message: str) -> Response:
    if is_htmx(request):
        return TEMPLATES.TemplateResponse(request, "_message.html", {
            "title": title, "message": message, "kind": "error"}, status_code=status)
    return page(request, "message.html", status, title=title, message=message, kind="error")


async def _sign_in_required(request: Request, error: Exception) -> Response:
    why = error.why if isinstance(error, SignInRequired) else "signed-out"
    target = f"/login?why={why}&next={quote(request.url.path, safe='/')}"
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    if request.method != "GET":
        # Nothing was done: say so rather than silently sending the user to sign in.
        return page(request, "login.html", 401, why=why, next=request.url.path,
                    error="Your session expired: nothing was changed. Sign in and try again."
                    if why == "expired" else "Sign in first: nothing was changed.")
    return RedirectResponse(target, status_code=303)


async def _forbidden(request: Request, error: Exception) -> Response:
    return _message(request, 403, "Not allowed", str(error))


async def _untrusted_proxy(request: Request, error: Exception) -> Response:
    # Logged here, once per request (rendering the page checks the user again).
    if isinstance(error, UntrustedProxy):
        log.warning("console: refused the identity header %s from %s, not a trusted proxy "
                    "(RELAYFLOW_CONSOLE_TRUSTED_PROXIES); it claimed %s", error.header,
                    error.address, error.name or "no valid user name")
    return _message(request, 403, "Identity header from an untrusted address", str(error))


async def _bad_input(request: Request, error: Exception) -> Response:
    status = error.status if isinstance(error, BadInput) else 400
    return _message(request, status, "Cannot do that", str(error))


def error_handlers() -> dict[Any, Any]:
    """Starlette exception handlers for the console's refusals."""
    return {SignInRequired: _sign_in_required, Forbidden: _forbidden,
            UntrustedProxy: _untrusted_proxy, BadInput: _bad_input}
