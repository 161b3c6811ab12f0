"""Who is signed in, for how long, and whether a form came from the console.

Sessions are signed cookies (Starlette's ``SessionMiddleware``, itsdangerous):
the user name, when the sign-in expires, the session's id and its CSRF
token. The cookie outlives the sign-in by a day, so a late visitor is told
the session expired rather than just shown the sign-in page. A signed cookie
alone is not enough: the session's id must also be live in this console
process's ``LiveSessions``, which forgets it at sign-out, when the user's
password hash changes (or the user is removed) in the users file, and when
the process ends. So a copied cookie stops working at sign-out; after a
restart everyone signs in again; with several console processes each knows
only the sessions it started (route a user to one process, e.g. sticky
sessions, or they sign in again on another).

With a trusted identity header (a reverse proxy that authenticated the
user), the header names the user on every request and the session only
holds the CSRF token; a request that sets it from an address outside
``RELAYFLOW_CONSOLE_TRUSTED_PROXIES`` (the socket's peer, never a forwarded
header), or that carries more than one value of it (a proxy that appends
rather than replaces), is refused.

Every POST carries the session's CSRF token (a hidden ``csrf_token`` field,
or the ``X-CSRF-Token`` header htmx sends); a request without it, or with
another, changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request

from relayflow.config.networks import address_in
from relayflow.config.settings import Settings
from relayflow.console.users import User, UserDirectory, is_valid_name

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AmbiguousIdentity",
    "Forbidden",
    "LiveSessions",
    "SignInRequired",
    "UntrustedProxy",
    "check_csrf",
    "csrf_token",
    "current_user",
    "sign_in",
    "sign_out",
]

SESSION_COOKIE = "relayflow_console"
"""Name of the session cookie."""
CSRF_FIELD = "csrf_token"
"""Form field of the CSRF token."""
CSRF_HEADER = "X-CSRF-Token"
"""Header of the CSRF token (htmx requests)."""
_USER, _EXPIRES, _CSRF, _ID = "user", "expires", "csrf", "sid"
_LIVE_KEPT = 10_000
"""Most live sessions one console process keeps: past it the oldest sign-in ends."""
_LIVE_PER_USER = 20
"""Most live sessions of one user: past it their oldest sign-in ends."""


@dataclass(frozen=True, slots=True)
class _Live:
    user: str
    password_hash: str | None
    expires: float


class LiveSessions:
    """The sessions this console process started and that have not ended.

    Bounded: at most ``_LIVE_PER_USER`` per user and ``_LIVE_KEPT`` in all;
    past either, the oldest sign-in ends (its user signs in again), so
    forgetting never brings a revoked session back.
    """

    def __init__(self) -> None:
        self._live: OrderedDict[str, _Live] = OrderedDict()

    def __len__(self) -> int:
        """How many sessions are live."""
        return len(self._live)

    def start(self, user: str, password_hash: str | None, expires: float) -> str:
        """A new live session's id."""
        mine = [sid for sid, live in self._live.items() if live.user == user]
        for sid in mine[:max(0, len(mine) - _LIVE_PER_USER + 1)]:
            del self._live[sid]
        while len(self._live) >= _LIVE_KEPT:
            self._live.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        self._live[sid] = _Live(user, password_hash, expires)
        return sid

    def end(self, sid: object) -> None:
        """End the session ``sid`` (nothing if it is not live)."""
        if isinstance(sid, str):
            self._live.pop(sid, None)

    def is_live(self, sid: object, user: str, password_hash: str | None) -> bool:
        """Whether ``sid`` is a live session of ``user`` signed in with ``password_hash``."""
        if not isinstance(sid, str) or (live := self._live.get(sid)) is None:
            return False
        if live.user != user or live.password_hash != password_hash \
                or live.expires <= time.time():
            del self._live[sid]
            return False
        return True


class SignInRequired(Exception):
    """Nobody is signed in (or the sign-in expired); the console asks to sign in.

    Attributes:
        why: What the sign-in page says (``expired`` or ``signed-out``).
    """

    def __init__(self, why: str = "signed-out") -> None:
        super().__init__(why)
        self.why = why


class Forbidden(Exception):
    """The signed-in user may not do this, or the form is not the console's; nothing changed."""


class AmbiguousIdentity(Forbidden):
    """An identity header came with more than one value; nobody is signed in.

    Attributes:
        header: The identity header repeated (or holding a comma-joined list).
    """

    def __init__(self, header: str) -> None:
        super().__init__(f"The {header} header came with more than one value: a proxy that "
                         "appends to it rather than replacing it lets a client name itself. "
                         "Nobody was signed in and nothing was changed.")
        self.header = header


class UntrustedProxy(Forbidden):
    """An identity header came from an address that is not a trusted proxy; nobody is signed in.

    Attributes:
        address: The connection's peer (``unknown`` when there is none).
        header: The identity header it set.
        name: The user it claimed, when that is a valid user name (else None).
    """

    def __init__(self, address: str, header: str, name: str | None) -> None:
        super().__init__(f"The {header} header came from {address}, which is not a trusted "
                         "proxy (RELAYFLOW_CONSOLE_TRUSTED_PROXIES): the console takes users "
                         "from that header only when the reverse proxy sets it. Nobody was "
                         "signed in and nothing was changed.")
        self.address, self.header, self.name = address, header, name


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = request.session[_CSRF] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> None:
    """Refuse a POST whose CSRF token is missing or not this session's.

    Raises:
        Forbidden: The token is missing or wrong.
    """
    expected = request.session.get(_CSRF)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        given = str((await request.form()).get(CSRF_FIELD) or "")
    if not isinstance(expected, str) or not hmac.compare_digest(given.encode(),
                                                                expected.encode()):
        raise Forbidden("This form was not sent by your console session (its security token "
                        "is missing, out of date or forged). Nothing was changed: reload the "
                        "page and try again.")


def sign_in(request: Request, user: User, users: UserDirectory, live: LiveSessions,
            settings: Settings) -> None:
    """Start a session for ``user`` (a new id and CSRF token: nothing from before carries over)."""
    live.end(request.session.get(_ID))
    request.session.clear()
    expires = time.time() + settings.console_session_seconds
    request.session[_USER] = user.name
    request.session[_EXPIRES] = expires
    request.session[_ID] = live.start(user.name, users.password_hash(user.name), expires)
    csrf_token(request)


def sign_out(request: Request, live: LiveSessions) -> None:
    """End the session, here and in ``live``: its cookie, copied or not, signs no one in again."""
    live.end(request.session.get(_ID))
    request.session.clear()


def current_user(request: Request, users: UserDirectory, live: LiveSessions,
                 settings: Settings, *, role: str | None = None) -> User:
    """The signed-in user; with ``role``, one who has it.

    Raises:
        SignInRequired: Nobody is signed in, or the sign-in expired or ended.
        Forbidden: The user lacks ``role``.
    """
    user = _proxied(request, users, settings) if settings.console_trusted_user_header \
        else _from_session(request, users, live)
    if role is not None and role not in user.roles:
        raise Forbidden(f"This page is for the {role} role; {user.name} has "
                        f"{', '.join(sorted(user.roles))}.")
    return user


def _from_session(request: Request, users: UserDirectory, live: LiveSessions) -> User:
    name, expires = request.session.get(_USER), request.session.get(_EXPIRES)
    if not isinstance(name, str):
        raise SignInRequired
    if not isinstance(expires, int | float) or expires <= time.time():
        live.end(request.session.get(_ID))
        request.session.clear()
        raise SignInRequired("expired")
    user = users.get(name)
    # Not live: signed out, ended by a password change or a restart, or never started here.
    if user is None or not live.is_live(request.session.get(_ID), name,
                                        users.password_hash(name)):
        request.session.clear()
        raise SignInRequired
    return user


def _proxied(request: Request, users: UserDirectory, settings: Settings) -> User:
    header = str(settings.console_trusted_user_header)
    values = request.headers.getlist(header)
    name = values[0].strip() if values else ""
    _check_peer(request, settings, name)
    if len(values) > 1 or "," in name:
        raise AmbiguousIdentity(header)
    roles_header = settings.console_trusted_roles_header
    if roles_header and len(request.headers.getlist(roles_header)) > 1:
        raise AmbiguousIdentity(roles_header)
    if not is_valid_name(name):
        raise Forbidden(f"No valid user name in the {header} header: the console trusts the "
                        "reverse proxy in front of it to sign users in.")
    if roles_header:
        roles = frozenset(r.strip() for r in request.headers.get(roles_header, "").split(",")
                          if is_valid_name(r.strip()))
        return User(name, roles)
    known = users.get(name)
    if known is None:
        raise Forbidden(f"{name} (from the {header} header) is not a console user.")
    return known


def _check_peer(request: Request, settings: Settings, name: str) -> None:
    """Refuse identity headers set by anyone but a trusted proxy (the socket's peer)."""
    address = request.client.host if request.client is not None else None
    if address_in(address, settings.console_trusted_networks):
        return
    for header in (settings.console_trusted_user_header, settings.console_trusted_roles_header):
        if header and header in request.headers:
            raise UntrustedProxy(address or "unknown", header,
                                 name if is_valid_name(name) else None)
