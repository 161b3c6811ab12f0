"""Attacks on the console, each performed over HTTP against the real console application.

The application is ``create_app`` around the reference application's
``Console`` (its real pages, sessions, users file, throttle and headers),
spoken to with httpx through an ASGI transport, which lets each test say
which address a request comes from. Its Temporal client connects on first
use and its Kafka producer never starts: every request here is refused, or
answered, before either is needed (a page that used them would fail).
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.routing import Route
from temporalio.client import Client

from relayflow.config.settings import Settings
from relayflow.console.app import PUBLIC, build_console, create_app
from relayflow.console.extension import APPROVERS, EVERYONE, OPERATOR, role_of
from relayflow.console.sessions import CSRF_FIELD, SESSION_COOKIE
from relayflow.console.users import hash_password, load_users
from relayflow.console.web import Console
from tests.integration.console.rig import (
    SECRET_KEY,
    assert_inert,
    assert_strict_csp,
    forged_session,
    session_of,
    shown_as_text,
)

pytestmark = pytest.mark.timeout(120)

ROLES = {"ann": "orders-approvers", "max": "orders-managers", "bob": "returns-approvers",
         "olga": OPERATOR}
"""User -> role; each one's password is ``pw-<name>``."""
ANN_HOME, OUTSIDER, PROXY = "10.1.0.5", "10.66.0.1", "127.0.0.1"
MARKUP = """<script>alert("xss")</script>"'><img src=x onerror=alert(1)>"""
"""Markup that runs as script wherever a page leaves it unescaped (at most 64 characters)."""
TICKETS = "examples.tickets.app:APP"
"""An application without console pages: its console renders with the console's own templates."""
_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


@cache
def hashed(password: str) -> str:
    return hash_password(password)


def write_users(path: Path, passwords: dict[str, str] | None = None) -> None:
    """The users file: every user of ``ROLES``, with ``passwords`` overriding ``pw-<name>``."""
    given = passwords or {}
    path.write_text("".join(
        f'[users.{name}]\npassword_hash = "{hashed(given.get(name, f"pw-{name}"))}"\n'
        f'roles = ["{role}"]\n' for name, role in ROLES.items()))


@dataclass
class Served:
    app: Starlette
    console: Console
    users_file: Path

    @asynccontextmanager
    async def client(self, address: str = ANN_HOME, *, https: bool = False,
                     cookie: str | None = None, errors_answered: bool = False,
                     ) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client of the console whose connections come from ``address``.

        ``errors_answered``: an error of the application is answered (500), as a
        server does, instead of raised in the test.
        """
        transport = httpx.ASGITransport(app=self.app, client=(address, 40_000),
                                        raise_app_exceptions=not errors_answered)
        base = "https://console.example" if https else "http://console.example"
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=30,
                                     cookies={SESSION_COOKIE: cookie} if cookie else None,
                                     ) as client:
            yield client


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    write_users(path)
    return path


@pytest.fixture
async def serve(tmp_path: Path, users_file: Path) -> AsyncIterator[Callable[..., Served]]:
    """The console of settings made of ``**update``; password sign-in from ``users_file``."""
    # Real clients: Temporal's connects on first use, Kafka's never starts.
    client = await Client.connect("127.0.0.1:9", lazy=True)
    producers: list[AIOKafkaProducer] = []

    def served(**update: object) -> Served:
        settings = Settings(data_dir=tmp_path, console_users_file=users_file,
                            console_signin_backoff_seconds=0.3, **update)  # type: ignore[arg-type]
        producers.append(AIOKafkaProducer(bootstrap_servers="127.0.0.1:9"))
        console = build_console(settings, load_users(settings), client, producers[-1])
        return Served(create_app(console), console, users_file)

    yield served
    for producer in producers:
        await producer.stop()


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, name: str, password: str | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    token = csrf_of((await client.get("/login", headers=headers)).text)
    return await client.post("/login", headers=headers, data={
        "username": name, "password": password or f"pw-{name}", CSRF_FIELD: token,
        "next": "/orders"})


async def who(client: httpx.AsyncClient) -> str | None:
    """Who ``/orders`` says is signed in (None: it sends to the sign-in page)."""
    answer = await client.get("/orders")
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/login")
        return None
    assert answer.status_code == 200, answer.text
    found = re.search(r"<span title=\"[^\"]*\">([^<]+)</span>", answer.text)
    assert found, "a signed-in page names its user"
    return html.unescape(found.group(1)).strip()


def cookie_of(client: httpx.AsyncClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    return value


async def test_a_copied_cookie_signs_no_one_in_after_sign_out(
        serve: Callable[..., Served]) -> None:
    served = serve()
    async with served.client() as ann:
        assert (await sign_in(ann, "ann")).status_code == 303
        copied = cookie_of(ann)
        async with served.client(OUTSIDER, cookie=copied) as thief:
            assert await who(thief) == "ann"  # the copy works while the session lives
        token = csrf_of((await ann.get("/orders")).text)
        assert (await ann.post("/logout", data={CSRF_FIELD: token})).status_code == 303
        assert await who(ann) is None
    async with served.client(OUTSIDER, cookie=copied) as thief:
        assert await who(thief) is None
        assert (await thief.get("/dead-letters")).status_code == 303
    assert len(served.console.sessions) == 0


async def test_a_cookie_forged_with_the_signing_key_signs_no_one_in(
        serve: Callable[..., Served]) -> None:
    served = serve(console_secret_key=SECRET_KEY)  # as if the key had leaked
    async with served.client() as ann:
        assert (await sign_in(ann, "ann")).status_code == 303
        copied = cookie_of(ann)
    async with served.client(OUTSIDER, cookie=copied) as control:
        assert await who(control) == "ann"  # the real cookie works
    for guessed in ("", "x" * 43, None):
        forged = forged_session(user="ann", expires=2e9, csrf="x", sid=guessed)
        async with served.client(OUTSIDER, cookie=forged) as forger:
            assert await who(forger) is None
    assert len(served.console.sessions) == 1


async def test_a_password_change_ends_the_users_sessions_and_only_theirs(
        serve: Callable[..., Served]) -> None:
    served = serve()
    async with served.client() as ann, served.client() as max_:
        assert (await sign_in(ann, "ann")).status_code == 303
        assert (await sign_in(max_, "max")).status_code == 303
        copied = cookie_of(ann)
        async with served.client(OUTSIDER, cookie=copied) as thief:
            assert await who(thief) == "ann"
            write_users(served.users_file, {"ann": "new-pw-ann"})  # what the operator does
            assert await who(thief) is None
        assert await who(ann) is None
        assert await who(max_) == "max"  # another user's session goes on
        assert (await sign_in(ann, "ann")).status_code == 401  # the old password is gone
        assert (await sign_in(ann, "ann", "new-pw-ann")).status_code == 303
        assert await who(ann) == "ann"
    async with served.client(OUTSIDER, cookie=copied) as thief:
        assert await who(thief) is None


async def test_an_outsider_cannot_lock_the_approver_out(serve: Callable[..., Served]) -> None:
    served = serve(console_signin_attempts=3, console_signin_address_attempts=5)
    outsiders = [f"10.66.0.{n}" for n in range(1, 5)]
    statuses: list[int] = []
    for address in outsiders:
        async with served.client(address) as outsider:
            statuses += [(await sign_in(outsider, "ann", "guess")).status_code
                         for _ in range(6)]
            locked = await sign_in(outsider, "ann")  # the right password, from a locked pair
            assert locked.status_code == 429
            assert "Too many failed sign-ins for ann from your address" in html.unescape(
                locked.text)
            assert 0 < int(locked.headers["retry-after"]) <= 300
            assert await who(outsider) is None
    # The bound: per address, two wrong passwords checked, then locked before any check.
    assert statuses == [401, 401, 429, 429, 429, 429] * len(outsiders)
    async with served.client(ANN_HOME) as ann:
        started = time.monotonic()
        assert (await sign_in(ann, "ann")).status_code == 303
        waited = time.monotonic() - started
        assert await who(ann) == "ann"
    # Slowed down (the name failed 12 times from anywhere), at most by the backoff.
    assert 0.3 <= waited < 5


async def test_behind_a_proxy_junk_sign_ins_lock_out_their_sender_not_everyone(
        serve: Callable[..., Served]) -> None:
    served = serve(console_signin_attempts=3, console_signin_address_attempts=5)
    junk = {"X-Forwarded-For": f"203.0.113.7, {OUTSIDER}"}  # the proxy appended the sender
    async with served.client(PROXY) as via_proxy:
        for n in range(6):
            await sign_in(via_proxy, f"junk{n}", "guess", headers=junk)
        refused = await sign_in(via_proxy, "olga", headers=junk)
        assert refused.status_code == 429
        assert "from your address" in refused.text
        # The same proxy, for another client: not locked out.
        answer = await sign_in(via_proxy, "olga", headers={"X-Forwarded-For": "10.2.0.9"})
        assert answer.status_code == 303
    # X-Forwarded-For from an address that is no trusted proxy is the client's own word.
    async with served.client("10.9.9.9") as liar:
        for n in range(5):
            await sign_in(liar, f"junk{n}", "guess", headers={"X-Forwarded-For": f"10.3.0.{n}"})
        assert (await sign_in(liar, "bob", headers={"X-Forwarded-For": "10.4.0.1"})
                ).status_code == 429


async def test_the_event_loop_answers_while_passwords_are_checked(
        serve: Callable[..., Served]) -> None:
    served = serve(console_signin_attempts=0, console_signin_address_attempts=0)
    # How long one check holds the thread that runs it, on this machine, now.
    started = time.monotonic()
    served.console.users.authenticate("ann", "wrong")
    one_check = time.monotonic() - started
    async with served.client() as client:
        token = csrf_of((await client.get("/login")).text)
        form = {"username": "ann", "password": "wrong", CSRF_FIELD: token, "next": "/"}
        gaps: list[float] = []
        running = True

        async def ticking() -> None:
            last = time.monotonic()
            while running:
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(ticking())
        started = time.monotonic()
        sign_ins = [asyncio.create_task(client.post("/login", data=form)) for _ in range(5)]
        await asyncio.sleep(0.02)
        page = await client.get("/login")
        answered = time.monotonic() - started
        results = await asyncio.gather(*sign_ins)
        hashing = time.monotonic() - started
        running = False
        await ticker
    assert page.status_code == 200
    assert [r.status_code for r in results] == [401] * 5
    # A page answered while five checks ran (on two threads: at least two checks long).
    assert hashing > 2 * one_check * 0.8, (hashing, one_check)
    assert answered < hashing / 2, (answered, hashing)
    # One check on the loop would stall it for a whole check; it never stalled half that.
    assert max(gaps) < one_check / 2, (max(gaps), one_check)


@pytest.mark.parametrize("headers", [
    [("X-Forwarded-User", "eve"), ("X-Forwarded-User", "olga")],
    [("X-Forwarded-User", "olga"), ("X-Forwarded-User", "eve")],
    [("X-Forwarded-User", "eve, olga")],
    [("X-Forwarded-User", "olga,eve")],
    [("X-Forwarded-User", "olga"), ("X-Forwarded-Groups", "operator"),
     ("X-Forwarded-Groups", "orders-approvers")],
])
async def test_a_repeated_identity_header_signs_no_one_in(
        serve: Callable[..., Served], headers: list[tuple[str, str]]) -> None:
    served = serve(console_trusted_user_header="X-Forwarded-User",
                   console_trusted_roles_header="X-Forwarded-Groups")
    async with served.client(PROXY) as client:
        control = await client.get("/orders", headers=[("X-Forwarded-User", "olga"),
                                                       ("X-Forwarded-Groups", "operator")])
        assert control.status_code == 200
        assert "Sign out" in control.text
        for path in ("/orders", "/", "/dead-letters"):
            refused = await client.get(path, headers=headers)
            assert refused.status_code == 403
            assert "more than one value" in html.unescape(refused.text)
            assert "Sign out" not in refused.text
            assert "olga" not in refused.text
            assert "eve" not in refused.text


def _pages(app: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, path parameters filled in."""
    return [(method, re.sub(r"\{[^}]+\}", "1", route.path))
            for route in app.routes if isinstance(route, Route)
            for method in sorted(route.methods or ()) if method != "HEAD"]


def _lacking(role: str) -> Sequence[str]:
    """Roles headers of users who do not hold ``role``."""
    others = {APPROVERS: ["", OPERATOR], OPERATOR: ["", "orders-approvers"], EVERYONE: [""]}
    return others.get(role, ["", OPERATOR])


async def test_every_page_needs_a_role(serve: Callable[..., Served]) -> None:
    served = serve(console_trusted_user_header="X-Forwarded-User",
                   console_trusted_roles_header="X-Forwarded-Groups")
    pages = _pages(served.app)
    gated = [(m, p) for m, p in pages if (m, p) not in PUBLIC]
    assert {"/", "/orders", "/batches", "/approvals", "/dead-letters"} <= {p for _, p in gated}
    nav = served.console.page_roles
    async with served.client(PROXY) as client:
        for method, path in gated:
            for roles in _lacking(role_of(path, nav)):
                answer = await client.request(method, path, headers={
                    "X-Forwarded-User": "zed", "X-Forwarded-Groups": roles})
                assert answer.status_code == 403, (method, path, roles)
                assert "This page is for" in html.unescape(answer.text), (method, path)
                assert "no role" in answer.text or roles in answer.text
        assert (await client.get("/orders", headers={"X-Forwarded-User": "zed",
                                                     "X-Forwarded-Groups": "auditors"})
                ).status_code == 200  # a role, and the page answers
    # With passwords, nobody signed in is sent to sign in, and the public pages answer.
    served = serve()
    async with served.client() as client:
        for method, path in gated:
            answer = await client.request(method, path)
            assert answer.status_code in {303, 401, 403}, (method, path)
            assert "Sign out" not in answer.text
        assert (await client.get("/login")).status_code == 200
        assert (await client.get("/static/htmx.min.js")).status_code == 200


async def test_cookies_are_secure_and_signed_in_pages_are_not_stored(
        serve: Callable[..., Served]) -> None:
    async with serve().client(https=True) as client:
        signed = await sign_in(client, "ann")
        assert signed.status_code == 303
        assert "secure" in signed.headers["set-cookie"].lower().split("; ")
        page = await client.get("/orders")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        assert page.headers["cache-control"] == "no-store"
        for answer in (signed, await client.get("/login"), await client.get("/dead-letters"),
                       await client.get("/nope")):
            assert answer.headers["cache-control"] == "no-store"
        assert "no-store" not in (await client.get("/static/htmx.min.js")).headers.get(
            "cache-control", "")
    # Plain HTTP: no HSTS. A console on all interfaces still sends only Secure cookies;
    # the loopback console of development does not (the browser could not send them back).
    async with serve(console_host="0.0.0.0").client() as client:
        login = await client.get("/login")
        assert "strict-transport-security" not in login.headers
        assert "secure" in login.headers["set-cookie"].lower().split("; ")
    async with serve().client() as client:
        assert "secure" not in (await client.get("/login")).headers["set-cookie"].lower()
    # Behind a TLS proxy: HSTS and Secure, on the trusted proxy's word only.
    tls = {"X-Forwarded-Proto": "https"}
    async with serve().client(PROXY) as client:
        login = await client.get("/login", headers=tls)
        assert "strict-transport-security" in login.headers
        assert "secure" in login.headers["set-cookie"].lower().split("; ")
    async with serve().client(OUTSIDER) as client:
        assert "strict-transport-security" not in (await client.get("/login", headers=tls)
                                                   ).headers


@pytest.mark.parametrize("app", ["relayflow.reference:APP", TICKETS])
async def test_markup_sent_to_the_sign_in_page_comes_back_as_text(
        serve: Callable[..., Served], app: str) -> None:
    served = serve(app=app, console_signin_attempts=2, console_signin_address_attempts=0)
    target = f"/{MARKUP}"  # a path of this console, so kept as the place to go after sign-in
    async with served.client() as client:
        form = await client.get("/login", params={"next": target})
        assert form.status_code == 200
        assert_inert(form, target)  # in the form's hidden field
        data = {"username": MARKUP, "password": "guess", "next": target,
                CSRF_FIELD: csrf_of(form.text)}
        wrong = await client.post("/login", data=data)
        assert wrong.status_code == 401
        assert_inert(wrong, MARKUP)  # the name the form keeps
        locked = await client.post("/login", data=data)
        assert locked.status_code == 429
        shown_as_text(locked, MARKUP)  # the name the lock-out message quotes


async def test_a_session_planted_before_sign_in_is_not_the_one_signed_in(
        serve: Callable[..., Served]) -> None:
    served = serve()
    # The attacker takes a session (its cookie, its CSRF token) and plants it in ann's browser.
    async with served.client(OUTSIDER) as attacker:
        planted_token = csrf_of((await attacker.get("/login")).text)
        planted = cookie_of(attacker)
    async with served.client() as ann:
        ann.cookies.set(SESSION_COOKIE, planted, domain="console.example")
        assert csrf_of((await ann.get("/login")).text) == planted_token  # the plant took
        assert (await sign_in(ann, "ann")).status_code == 303
        token = csrf_of((await ann.get("/orders")).text)
        assert token != planted_token
        assert session_of(cookie_of(ann))["csrf"] == token
        # A form forged with the planted token is refused; ann stays signed in.
        forged = await ann.post("/logout", data={CSRF_FIELD: planted_token})
        assert forged.status_code == 403
        assert await who(ann) == "ann"
    async with served.client(OUTSIDER, cookie=planted) as attacker:
        assert await who(attacker) is None
    # Signing in over a live session (a shared browser) starts a new one and ends the old.
    async with served.client() as shared:
        assert (await sign_in(shared, "olga")).status_code == 303
        before = cookie_of(shared)
        assert (await sign_in(shared, "ann")).status_code == 303
        after = cookie_of(shared)
        assert session_of(after)["sid"] != session_of(before)["sid"]
        assert session_of(after)["csrf"] != session_of(before)["csrf"]
        async with served.client(OUTSIDER, cookie=before) as copy:
            assert await who(copy) is None
        assert await who(shared) == "ann"
    assert len(served.console.sessions) == 2  # ann's two sign-ins; olga's ended


async def test_a_successful_sign_in_clears_the_failures_before_it(
        serve: Callable[..., Served]) -> None:
    served = serve(console_signin_attempts=3, console_signin_address_attempts=0)
    throttle = served.console.throttle
    for address in ("10.9.0.1", "10.9.0.2", "10.9.0.3"):  # the name failed from anywhere
        async with served.client(address) as elsewhere:
            assert (await sign_in(elsewhere, "ann", "guess")).status_code == 401
    assert throttle.wait("ann") > 0
    async with served.client() as ann:
        for _ in range(2):  # mistyped twice here: one short of the lock-out
            assert (await sign_in(ann, "ann", "typo")).status_code == 401
        assert (await sign_in(ann, "ann")).status_code == 303
        assert throttle.wait("ann") == 0  # the name's wait is gone
        # Two more failures from here do not lock ann out: the count started again.
        for _ in range(2):
            assert (await sign_in(ann, "ann", "typo")).status_code == 401
        assert (await sign_in(ann, "ann")).status_code == 303
        assert await who(ann) == "ann"



async def test_a_server_error_carries_the_strict_headers(serve: Callable[..., Served]) -> None:
    # A real 500: the order page asks Temporal, whose client reaches nothing here.
    served = serve()
    for https in (False, True):
        async with served.client(https=https, errors_answered=True) as client:
            assert (await sign_in(client, "olga")).status_code == 303
            answer = await client.get("/orders?order_id=A-1")
        assert answer.status_code == 500
        assert answer.text == "Internal Server Error"  # no traceback, nothing of the order
        assert_strict_csp(answer)
        assert (answer.headers["cache-control"], answer.headers["x-frame-options"],
                answer.headers["x-content-type-options"], answer.headers["referrer-policy"]) \
            == ("no-store", "DENY", "nosniff", "same-origin")
        assert ("strict-transport-security" in answer.headers) is https
