"""What the console tests share: users, signing in over HTTP, forging cookies, Kafka checks."""

from __future__ import annotations

import base64
import html
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

import httpx
import itsdangerous

from relayflow.config.settings import Settings
from relayflow.console import UserDirectory, hash_password
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


def text(answer: httpx.Response) -> str:
    """An answer's text with HTML entities resolved (messages quote names)."""
    return html.unescape(answer.text)


def forged_session(**session: object) -> str:
    """A session cookie signed with the console's key, holding ``session``."""
    data = base64.b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(SECRET_KEY).sign(data).decode()


def expired_session(name: str, csrf: str) -> str:
    """The cookie of ``name``'s sign-in that expired a minute ago."""
    return forged_session(user=name, expires=time.time() - 60, csrf=csrf)


async def decisions_end(settings: Settings) -> dict[object, int]:
    """The end offsets of ``approvals.decisions``: equal before and after means nothing was sent."""
    kafka = kafka_clients(settings)
    return dict(await end_offsets(kafka, await partitions_of(kafka, [APPROVALS_DECISIONS])))


__all__ = ["SECRET_KEY", "SESSION_COOKIE", "USERS", "Console", "csrf_of", "decisions_end",
           "directory", "expired_session", "forged_session", "signed_in", "text"]
