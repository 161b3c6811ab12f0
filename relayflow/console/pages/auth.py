"""Sign in and sign out."""

from __future__ import annotations

import asyncio
import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from relayflow.console.extension import home_of
from relayflow.console.forwarded import client_address
from relayflow.console.sessions import SignInRequired, check_csrf, sign_in, sign_out
from relayflow.console.throttle import Lockout, wait_text
from relayflow.console.web import console, page, signed_in

__all__ = ["ROUTES"]

_MAX_PASSWORD = 1024
"""Longer passwords are refused unchecked (hashing megabytes would be a cheap attack)."""
_WHY = {"expired": "Your session expired; sign in again.", "signed-out": ""}


def _safe_next(target: str | None) -> str:
    """Only a path of this console (never another site) is a place to go after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def home(request: Request) -> Response:
    """The user's first page (``home_of``): the inbox for approvers, dead letters for operators."""
    user = signed_in(request)
    c = console(request)
    target = home_of(user, c.nav)
    if target is None:
        return page(request, "message.html", user=user, title="Nothing here for you",
                    message=f"The console of application {c.app.name!r} has no page for the "
                            f"roles {', '.join(sorted(user.roles))}.", kind="ok")
    return RedirectResponse(target, status_code=303)


async def login_form(request: Request) -> Response:
    """The sign-in form (with a trusted identity header: straight in)."""
    if console(request).settings.console_trusted_user_header:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return page(request, "login.html", user=None, next=_safe_next(request.query_params.get("next")),
                notice=_WHY.get(request.query_params.get("why", ""), ""))


async def login(request: Request) -> Response:
    """Check the password (unless too many failed: 429); start a session."""
    await check_csrf(request)
    form = await request.form()
    name, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    c = console(request)
    if c.settings.console_trusted_user_header:  # the proxy signs users in: no password here
        return RedirectResponse(target, status_code=303)
    address = client_address(request.scope, c.settings)
    refused = c.throttle.locked(name, address)
    if refused is None:
        await asyncio.sleep(c.throttle.wait(name))  # slowed, never locked: see throttle
        user = await c.users.check_password(name, password) \
            if len(password) <= _MAX_PASSWORD else None
        if user is not None:
            c.throttle.succeeded(name, address)
            sign_in(request, user, c.users, c.sessions, c.settings)
            return RedirectResponse(target, status_code=303)
        refused = c.throttle.failed(name, address)
        if refused is None:
            return page(request, "login.html", 401, user=None, next=target, username=name[:64],
                        error="Wrong user name or password.")
    response = page(request, "login.html", 429, user=None, next=target, username=name[:64],
                    error=_locked_out(refused, name[:64]))
    response.headers["Retry-After"] = str(math.ceil(refused.seconds))
    return response


def _locked_out(lockout: Lockout, name: str) -> str:
    who = f"for {name} from your address" if lockout.by == "user" else "from your address"
    return (f"Too many failed sign-ins {who}: sign-in is locked for "
            f"{wait_text(lockout.seconds)}. Until then the password is not checked, so even "
            "the right one does not sign you in; try again after that.")


async def logout(request: Request) -> Response:
    """End the session (its cookie, copied or not, signs no one in again)."""
    try:
        signed_in(request)
    except SignInRequired:
        return RedirectResponse("/login", status_code=303)
    await check_csrf(request)
    sign_out(request, console(request).sessions)
    return RedirectResponse("/login", status_code=303)


ROUTES = [
    Route("/", home),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
