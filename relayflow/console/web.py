"""What every page shares: the console's clients, rendering, and how refusals look.

``Console`` holds what the lifespan connected (the Temporal client, the
Kafka producer) and what was loaded at start (the application, its codec,
users, the application's own pages). ``page`` renders a template with the
signed-in user, the CSRF token and the navigation; the exception handlers
turn a missing sign-in, a refusal, bad input or an unknown page into a page
(or an htmx fragment) that says what happened.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiokafka import AIOKafkaProducer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from temporalio.client import Client

from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.console.extension import ConsolePages, NavEntry, may_see
from relayflow.console.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Forbidden,
    LiveSessions,
    SignInRequired,
    UntrustedProxy,
    check_csrf,
    csrf_token,
    current_user,
)
from relayflow.console.throttle import SignInThrottle
from relayflow.console.users import OPERATOR, User, UserDirectory
from schemas.formats import EventCodec

__all__ = [
    "TEMPLATES",
    "BadInput",
    "Console",
    "console",
    "error_handlers",
    "is_htmx",
    "page",
    "posted",
    "printable",
    "signed_in",
    "templates_for",
]

log = logging.getLogger(__name__)

_TEMPLATE_FOLDER = Path(__file__).parent / "templates"


def _as_json(value: Any, indent: int | None = None) -> str:
    """JSON to show as text (autoescaped where it lands), unlike ``tojson``'s for scripts."""
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


_FILTERS = {"as_json": _as_json}
"""Filters of the console's own templates."""
TEMPLATES = Jinja2Templates(directory=_TEMPLATE_FOLDER)
"""The console's own Jinja templates (autoescaped)."""
TEMPLATES.env.filters.update(_FILTERS)
# Dead letters first: an operator's first page (``home_of``) is where action is needed.
_NAV = (NavEntry("Dead letters", "/dead-letters", OPERATOR),
        NavEntry("Activities", "/activities", OPERATOR),
        NavEntry("Status", "/status", OPERATOR))
"""The console's own pages in the navigation, after the application's."""
_UNLISTED = (NavEntry("Parked keys", "/parked", OPERATOR),)
"""The console's own pages reached from others, not from the navigation, with their roles."""
_REFERENCE_PAGES = {"approvals": "Approvals", "orders": "Orders", "batches": "Batches"}
"""Pages of the reference application's console extension, named when another app is served."""


def templates_for(pages: ConsolePages | None) -> Jinja2Templates:
    """The console's templates, and the application's pages' after them."""
    if pages is None:
        return TEMPLATES
    found = Jinja2Templates(directory=[_TEMPLATE_FOLDER, pages.template_folder])
    found.env.filters.update({**_FILTERS, **pages.template_filters})
    return found


class BadInput(ValueError):
    """A request the console cannot act on as given (unknown id, malformed field); nothing changed.

    Attributes:
        status: HTTP status of the answer (400, or 404 for something that does not exist).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def printable(raw: str, what: str, longest: int = 1_000) -> str:
    """``raw`` as given, if it is a non-empty printable text of at most ``longest`` characters.

    Raises:
        BadInput: It is not (the message names ``what`` and quotes the start of it).
    """
    if not raw or len(raw) > longest or not raw.isprintable():
        raise BadInput(f"Not a {what}: {raw[:100]!r}.")
    return raw


@dataclass(frozen=True, slots=True)
class Console:
    """What the pages work with.

    Attributes:
        settings: The settings the console runs with.
        app: The application it serves (``settings.app``, loaded once).
        users: Who may sign in.
        client: Connected Temporal client.
        producer: Started Kafka producer (decisions only).
        codec: Encodes and decodes the application's events.
        throttle: Failed sign-ins, and who is locked out.
        pages: The application's own pages (its ``ConsolePages``), if any.
        templates: The console's templates and those of ``pages``.
        sessions: The sessions this process started that have not ended.
    """

    settings: Settings
    app: Application
    users: UserDirectory
    client: Client
    producer: AIOKafkaProducer
    codec: EventCodec
    throttle: SignInThrottle
    pages: ConsolePages | None = None
    templates: Jinja2Templates = field(default=TEMPLATES)
    sessions: LiveSessions = field(default_factory=LiveSessions)

    @property
    def nav(self) -> Sequence[NavEntry]:
        """Every page of the navigation: the application's, then the console's."""
        return (*(self.pages.nav if self.pages else ()), *_NAV)

    @property
    def page_roles(self) -> Sequence[NavEntry]:
        """The navigation, and the pages outside it: the role each path needs (``role_of``)."""
        return (*self.nav, *_UNLISTED)

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
    return current_user(request, c.users, c.sessions, c.settings, role=role)


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
    c = console(request)
    nav = [entry for entry in c.nav if user is not None and may_see(user, entry)]
    return c.templates.TemplateResponse(request, template, {
        "user": user, "nav": nav, "csrf_token": csrf_token(request), "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER, **context}, status_code=status)


def _message(request: Request, status: int, title: str, message: str) -> Response:
    if is_htmx(request):
        return console(request).templates.TemplateResponse(request, "_message.html", {
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


async def _not_found(request: Request, error: Exception) -> Response:
    if not isinstance(error, HTTPException) or error.status_code != 404:  # noqa: PLR2004
        raise error
    c = console(request)
    app = c.app
    first = request.url.path.strip("/").split("/", 1)[0]
    served = {entry.path.strip("/").split("/", 1)[0] for entry in c.nav}
    if first in _REFERENCE_PAGES and first not in served:
        return _message(request, 404, "Not in this application",
                        f"{_REFERENCE_PAGES[first]} is a page of the reference application; "
                        f"application {app.name!r} has none.")
    return _message(request, 404, "No such page",
                    f"There is no page {request.url.path[:200]} in the console of "
                    f"application {app.name!r}.")


def error_handlers() -> dict[Any, Any]:
    """Starlette exception handlers for the console's refusals and unknown pages."""
    return {SignInRequired: _sign_in_required, Forbidden: _forbidden,
            UntrustedProxy: _untrusted_proxy, BadInput: _bad_input, 404: _not_found}
