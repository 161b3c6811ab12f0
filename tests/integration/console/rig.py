"""What the console tests share: users, signing in, reading pages, forging cookies, Kafka checks."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser

import httpx
import itsdangerous
import markupsafe
from pydantic import SecretStr

from relayflow.config.settings import Settings
from relayflow.console import UserDirectory, hash_password, running_console
from relayflow.console.sessions import CSRF_FIELD, SESSION_COOKIE
from relayflow.kafka.reads import end_offsets, partitions_of
from relayflow.reference.topics import APPROVALS_DECISIONS
from relayflow.runtime.clients import kafka_clients

SECRET_KEY = "console-tests-" + uuid.uuid4().hex
"""The session key the tests' console signs cookies with."""

USERS = {
    "ann": ("orders-approvers",),
    "max": ("orders-managers",),
    "bob": ("returns-approvers",),   # an approver, of a group no order asks
    "olga": ("operator",),
}
"""User -> roles; each one's password is ``pw-<name>``."""


@cache
def directory() -> UserDirectory:
    """The users of ``USERS`` (hashed once per session: argon2 is slow on purpose)."""
    return UserDirectory({name: (frozenset(roles), hash_password(f"pw-{name}"))
                          for name, roles in USERS.items()})


@dataclass(frozen=True)
class Console:
    """A running console.

    Attributes:
        url: Its base URL.
        settings: The settings it runs with.
    """

    url: str
    settings: Settings


@asynccontextmanager
async def serving(system: Settings, **update: object) -> AsyncIterator[Console]:
    """The console on ``system``'s stack (free port, ``SECRET_KEY``, ``USERS``) during the block.

    Args:
        system: The stack and the application's bridge and worker (``relayflow_system``).
        **update: Further settings (e.g. ``app``).
    """
    settings = system.model_copy(update={
        "console_host": "127.0.0.1", "console_port": 0,
        "console_secret_key": SecretStr(SECRET_KEY), **update})
    async with running_console(settings, users=directory()) as url:
        yield Console(url, settings)


_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@asynccontextmanager
async def signed_in(console: Console, name: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTP client signed in as ``name``, and its session's CSRF token."""
    async with httpx.AsyncClient(base_url=console.url, timeout=30.0) as client:
        token = csrf_of((await client.get("/login")).text)
        answer = await client.post("/login", data={"username": name, "password": f"pw-{name}",
                                                   CSRF_FIELD: token, "next": "/orders"})
        assert answer.status_code == 303, answer.text
        page = await client.get("/orders")
        yield client, csrf_of(page.text)


class _Reading(HTMLParser):
    """A page as a browser shows it: its text (outside scripts), its scripts, its handlers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.scripts: list[str | None] = []
        self.handlers: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._hidden += 1
        if tag == "script":
            self.scripts.append(dict(attrs).get("src"))
        self.handlers += [f"<{tag} {name}=...>" for name, _ in attrs if name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


def _read(answer: httpx.Response) -> _Reading:
    reading = _Reading()
    reading.feed(answer.text)
    reading.close()
    return reading


def text(answer: httpx.Response) -> str:
    """What a reader sees of an answer: the text of its elements, entities resolved.

    Markup is not text: a tag on the page (``<script>`` if escaping were off)
    is not in it, and markup the page escaped is. Assertions about the markup
    itself (attributes, tags) read ``answer.text``.
    """
    return "".join(_read(answer).text)


def shown_as_text(answer: httpx.Response, markup: str) -> None:
    """Assert ``markup`` is on the page as text a reader sees, and inert (``assert_inert``)."""
    assert markup in text(answer), f"{markup!r} is not shown as text"
    assert_inert(answer, markup)


def assert_inert(answer: httpx.Response, markup: str) -> None:
    """Assert ``markup`` is in the HTML escaped (text or attribute value), and runs nothing.

    Escaped the way Jinja's autoescaping does (``markupsafe``); the page runs
    no script but the console's own files and has no event handler attribute.
    """
    assert str(markupsafe.escape(markup)) in answer.text, f"{markup!r} is not escaped"
    assert markup not in answer.text, f"{markup!r} is in the HTML as markup"
    reading = _read(answer)
    assert all(src is not None and src.startswith("/static/") for src in reading.scripts), \
        reading.scripts
    assert reading.handlers == []


def forged_session(**session: object) -> str:
    """A session cookie signed with the console's key, holding ``session``."""
    data = base64.b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(SECRET_KEY).sign(data).decode()


_UNSAFE_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'",
                   "'strict-dynamic'"}
"""Script sources that let markup or strings run as script (or trust what a script loads)."""


def policy_of(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy's directives and their sources, lower case.

    A directive named twice counts once, the first time, as browsers read it.
    """
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        if words := part.split():
            directives.setdefault(words[0].lower(), [w.lower() for w in words[1:]])
    return directives


def assert_strict_csp(answer: httpx.Response) -> None:
    """Assert the answer carries a policy under which only the console's own files run as script.

    Every Content-Security-Policy header (a browser enforces them all) has a
    ``script-src`` or, without one, a ``default-src`` (likewise any
    ``default-src``) with none of ``_UNSAFE_SOURCES``, no wildcard and no
    scheme source (``data:``, ``https:`` ...); frames of the console are refused.
    """
    where = f"{answer.request.method} {answer.request.url.path} ({answer.status_code})"
    policies = answer.headers.get_list("content-security-policy")
    assert policies, f"{where}: no Content-Security-Policy"
    for header in policies:
        directives = policy_of(header)
        scripts = directives.get("script-src", directives.get("default-src"))
        assert scripts, f"{where}: neither script-src nor default-src in {header!r}"
        for name in ("script-src", "default-src", "script-src-elem", "script-src-attr"):
            loose = [s for s in directives.get(name, [])
                     if s in _UNSAFE_SOURCES or "*" in s or s.endswith(":")]
            assert not loose, f"{where}: {name} allows {loose} in {header!r}"
        assert directives.get("frame-ancestors") == ["'none'"], f"{where}: {header!r}"


def session_of(cookie: str) -> dict[str, object]:
    """What a session cookie holds (its signature is not checked)."""
    data: dict[str, object] = json.loads(base64.b64decode(cookie.split(".", 1)[0]))
    return data


def expired_session(name: str, csrf: str) -> str:
    """The cookie of ``name``'s sign-in that expired a minute ago."""
    return forged_session(user=name, expires=time.time() - 60, csrf=csrf)


async def decisions_end(settings: Settings) -> dict[object, int]:
    """The end offsets of ``approvals.decisions``: equal before and after means nothing was sent."""
    kafka = kafka_clients(settings)
    return dict(await end_offsets(kafka, await partitions_of(kafka, [APPROVALS_DECISIONS])))


__all__ = ["SECRET_KEY", "SESSION_COOKIE", "USERS", "Console", "assert_inert", "assert_strict_csp",
           "csrf_of",
           "decisions_end", "directory", "expired_session", "forged_session", "policy_of",
           "serving", "session_of", "shown_as_text", "signed_in", "text"]
