"""The console over plain HTTP on the real stack: sign-in, decisions, and every refusal.

Bad input on each form (unknown order, malformed comment, expired session,
forged CSRF token, wrong role) gets a clear message and changes nothing:
``approvals.decisions`` gets no record, the saga still waits, a parked key
stays parked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from relayflow.config.settings import Settings
from relayflow.console import running_console
from relayflow.console.sessions import CSRF_FIELD
from relayflow.operate import dlq as dlq_admin
from relayflow.reference.approvals import workflow_id_of
from relayflow.reference.events import ApprovalRequested, OrderCompleted, OrderFailed, OrderPlaced
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.testing.kafka import AppKafka
from tests.helpers.support import order_placed
from tests.integration.console.rig import (
    SESSION_COOKIE,
    Console,
    assert_strict_csp,
    csrf_of,
    decisions_end,
    directory,
    expired_session,
    forged_session,
    signed_in,
    text,
)
from workflows.outcomes import outcome_event_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REFERENCE = ReferenceSettings()
"""The reference app's settings, as its worker reads them (the same environment)."""


@pytest.fixture
async def ann(console: Console) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with signed_in(console, "ann") as session:
        yield session


def big(system: Settings, timeout_seconds: int | None = None) -> OrderPlaced:
    """An order that waits for approval (of a SKU of its own: stock never runs out)."""
    return order_placed(sku=f"SKU-CON-{uuid.uuid4().hex[:8]}", quantity=1,
                        unit_price_cents=REFERENCE.approval_threshold_cents,
                        approval_timeout_seconds=timeout_seconds)


async def waiting(kafka: AppKafka, system: Settings,
                  timeout_seconds: int | None = None) -> OrderPlaced:
    """An order sent, once its saga asks for approval."""
    order = big(system, timeout_seconds)
    await kafka.send(order)
    await kafka.wait_for(ApprovalRequested, key=order.order_id)
    return order


def decision_form(token: str, decision: str = "APPROVED", comment: str = "") -> dict[str, str]:
    return {CSRF_FIELD: token, "decision": decision, "comment": comment,
            "event_id": str(uuid.uuid4())}


async def test_pages_need_a_sign_in_and_a_wrong_password_is_refused(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        answer = await client.get("/approvals")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login")
        form = csrf_of((await client.get("/login")).text)
        wrong = await client.post("/login", data={"username": "ann", "password": "nope",
                                                  CSRF_FIELD: form})
        assert wrong.status_code == 401
        assert "Wrong user name or password." in text(wrong)
        unknown = await client.post("/login", data={"username": "eve", "password": "pw-eve",
                                                    CSRF_FIELD: form})
        assert unknown.status_code == 401
        assert (await client.get("/approvals")).status_code == 303
        # Off by default: a proxy's identity header signs nobody in.
        proxied = await client.get("/approvals", headers={"X-Forwarded-User": "ann"})
        assert proxied.status_code == 303


async def test_sign_in_needs_the_login_forms_token(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        answer = await client.post("/login", data={"username": "ann", "password": "pw-ann"})
        assert answer.status_code == 403
        assert "security token" in text(answer)
        assert (await client.get("/approvals")).status_code == 303


async def test_answers_carry_security_headers(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        answer = await client.get("/login")
    assert_strict_csp(answer)
    assert answer.headers["x-frame-options"] == "DENY"
    cookie = answer.headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()


async def test_every_page_and_refusal_carries_a_strict_content_security_policy(
        console: Console) -> None:
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=console.url) as client:
        login = await client.get("/login")
        answers += [login, await client.get("/approvals"), await client.get("/nope"),
                    await client.get("/static/htmx.min.js"),
                    await client.post("/login", data={"username": "ann", "password": "x"}),
                    await client.post("/login", data={"username": "ann", "password": "x",
                                                      CSRF_FIELD: csrf_of(login.text)})]
    for name, paths in {"ann": ("/", "/approvals", "/approvals/rows", "/dead-letters"),
                        "olga": ("/orders", "/orders?order_id=no-such-order",
                                 "/orders?order_id=a%00b", "/batches", "/dead-letters",
                                 "/dead-letters?topic=x", "/approvals")}.items():
        async with signed_in(console, name) as (client, _):
            answers += [await client.get(path) for path in paths]
            answers.append(await client.get("/dead-letters" if name == "ann" else "/approvals",
                                            headers={"HX-Request": "true"}))  # a fragment
    # Pages, sign-in, redirects, bad input, refusals, unknown pages: each one seen.
    assert {a.status_code for a in answers} >= {200, 303, 400, 401, 403, 404}
    for answer in answers:
        assert_strict_csp(answer)


async def test_a_decision_counts_once_and_a_second_one_says_what_happened(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        ann: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = ann
    order = await waiting(relayflow_kafka, relayflow_system)
    inbox = await client.get("/approvals")
    assert order.order_id in text(inbox)
    form = decision_form(csrf_of(inbox.text), comment="fine by me")
    first = await client.post(f"/approvals/{order.order_id}/decision", data=form)
    assert first.status_code == 200
    assert "Approved as orders-approvers/ann." in text(first)
    completed = await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
    assert completed.order_id == order.order_id
    again = await client.post(f"/approvals/{order.order_id}/decision", data=form | {
        "event_id": str(uuid.uuid4())})
    assert again.status_code == 200
    assert "Already approved by orders-approvers/ann: nothing was sent." in text(again)
    # Gone from the inbox; a page that showed it hears what became of it.
    rows = await client.get("/approvals/rows", params={"shown": order.order_id})
    assert 'data-status="approved"' in rows.text
    # Her own decision reads as its answer did ("as"), so a poll never rewrites it.
    assert "Approved as orders-approvers/ann." in text(rows)


async def test_a_decision_too_late_is_not_sent(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        ann: tuple[httpx.AsyncClient, str]) -> None:
    client, token = ann
    order = await waiting(relayflow_kafka, relayflow_system, timeout_seconds=1)
    failed = await relayflow_kafka.wait_for(OrderFailed, key=order.order_id)
    assert failed.reason == "approval_timed_out"
    before = await decisions_end(relayflow_system)
    late = await client.post(f"/approvals/{order.order_id}/decision", data=decision_form(token))
    assert late.status_code == 200
    assert "Too late: nobody decided before the deadline" in text(late)
    assert await decisions_end(relayflow_system) == before


async def test_bad_decisions_change_nothing(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        ann: tuple[httpx.AsyncClient, str]) -> None:
    client, token = ann
    order = await waiting(relayflow_kafka, relayflow_system)
    url = f"/approvals/{order.order_id}/decision"
    before = await decisions_end(relayflow_system)
    refused = {
        "control characters": decision_form(token, comment="ok\x00\x1b[2J"),
        "at most 2000 characters": decision_form(token, comment="x" * 2001),
        "decision must be APPROVED or REJECTED": decision_form(token, decision="MAYBE"),
        "no valid decision id": decision_form(token) | {"event_id": "not-a-uuid"},
    }
    for message, form in refused.items():
        answer = await client.post(url, data=form)
        assert answer.status_code == 400, message
        assert message in text(answer)
    forged = await client.post(url, data=decision_form("forged-" + token[7:]))
    assert forged.status_code == 403
    assert "Nothing was changed" in text(forged)
    without = await client.post(url, data=decision_form(token) | {CSRF_FIELD: ""})
    assert without.status_code == 403
    unknown = await client.post("/approvals/no-such-order/decision", data=decision_form(token))
    assert unknown.status_code == 404
    assert "There is no order 'no-such-order'." in text(unknown)
    assert await decisions_end(relayflow_system) == before
    rows = await client.get("/approvals/rows")
    assert f'data-order="{order.order_id}" data-status="waiting"' in rows.text


async def test_an_approver_of_another_group_neither_sees_nor_decides(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        ann: tuple[httpx.AsyncClient, str]) -> None:
    order = await waiting(relayflow_kafka, relayflow_system)
    approver, approver_token = ann

    async def shown_to(client: httpx.AsyncClient) -> bool:
        inbox = await client.get("/approvals")
        assert inbox.status_code == 200
        return order.order_id in text(inbox)

    # The control: the same check finds it in the inbox of the group it asks.
    assert await shown_to(approver)
    async with signed_in(console, "bob") as (client, token):
        assert not await shown_to(client)
        before = await decisions_end(relayflow_system)
        answer = await client.post(f"/approvals/{order.order_id}/decision",
                                   data=decision_form(token))
        assert answer.status_code == 403
        assert "bob is not among the approvers" in text(answer)
        assert await decisions_end(relayflow_system) == before
        # Only operators see dead letters.
        dlq = await client.get("/dead-letters")
        assert dlq.status_code == 403
        assert "for the operator role" in text(dlq)
    # The control of "nothing was sent": the same post by the group's approver is sent.
    decided = await approver.post(f"/approvals/{order.order_id}/decision",
                                  data=decision_form(approver_token))
    assert decided.status_code == 200
    assert await decisions_end(relayflow_system) != before


async def test_an_expired_session_is_named_and_changes_nothing(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    order = await waiting(relayflow_kafka, relayflow_system)
    before = await decisions_end(relayflow_system)
    cookies = {SESSION_COOKIE: expired_session("ann", "token-1")}
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies) as client:
        answer = await client.post(f"/approvals/{order.order_id}/decision",
                                   data=decision_form("token-1"))
        assert answer.status_code == 401
        assert "Your session expired: nothing was changed." in text(answer)
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies) as client:
        page = await client.get("/approvals", follow_redirects=True)
        assert "Your session expired; sign in again." in text(page)
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies) as client:
        polled = await client.get("/approvals/rows", headers={"HX-Request": "true"})
        assert polled.status_code == 401
        assert polled.headers["HX-Redirect"].startswith("/login?why=expired")
    # A cookie signed with another key is nobody's.
    other = forged_session(user="ann", expires=2e9, csrf="x").replace(".", "!", 1)
    async with httpx.AsyncClient(base_url=console.url,
                                 cookies={SESSION_COOKIE: other}) as client:
        assert (await client.get("/approvals")).status_code == 303
    assert await decisions_end(relayflow_system) == before


async def test_order_search_shows_the_timeline_or_says_there_is_no_such_order(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        ann: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = ann
    order = order_placed()
    await relayflow_kafka.send(order)
    await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
    temporal = await connect_temporal(relayflow_system)
    await temporal.get_workflow_handle(workflow_id_of(order.order_id)).result()
    page = await client.get("/orders", params={"order_id": order.order_id})
    assert page.status_code == 200
    completed_id = outcome_event_id(workflow_id_of(order.order_id), "completed")
    for markup in ('"COMPLETED">OrderCompleted<', "/namespaces/default/workflows/order-"):
        assert markup in page.text, markup
    for seen in ("reserve_inventory done", "charge_payment done", "create_shipment done",
                 f"published OrderCompleted {completed_id}", str(order.event_id)):
        assert seen in text(page), seen
    missing = await client.get("/orders", params={"order_id": "no-such-order"})
    assert missing.status_code == 404
    assert "No order 'no-such-order'" in text(missing)
    bad = await client.get("/orders", params={"order_id": "a\x00b"})
    assert bad.status_code == 400
    assert "Not an order id" in text(bad)


async def test_operator_forms_refuse_bad_input_and_leave_the_key_parked(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    key = f"o-con-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(ORDERS_EVENTS, b"junk", key=key)
    await relayflow_kafka.wait_for_dead_letter(ORDERS_EVENTS, key=key)
    async with signed_in(console, "olga") as (client, token):
        listed = await client.get("/dead-letters", params={"topic": ORDERS_EVENTS,
                                                           "reason": "unknown-framing"})
        assert key in text(listed)
        refused = {
            "Unknown topic": {"topic": "payments.events", "key": key.encode().hex()},
            "not hex": {"topic": ORDERS_EVENTS, "key": "zz"},
            "Not confirmed": {"topic": ORDERS_EVENTS, "key": key.encode().hex()},
        }
        for message, form in refused.items():
            answer = await client.post("/parked/release", data={CSRF_FIELD: token, **form})
            assert answer.status_code == 400, message
            assert message in text(answer)
        forged = await client.post("/parked/release", data={
            CSRF_FIELD: "forged", "topic": ORDERS_EVENTS, "key": key.encode().hex(),
            "confirm": "yes"})
        assert forged.status_code == 403
        assert (await client.get("/dead-letters", params={"topic": "x"})).status_code == 400
        assert (await client.get("/dead-letters/orders.events.dlq/0/999999999")).status_code \
            == 404
        assert (await client.get("/batches/x/failures", params={"page": "x"})).status_code \
            == 400
        assert (ORDERS_EVENTS, key.encode()) in await dlq_admin.parked_keys(relayflow_system)
        released = await client.post("/parked/release", data={
            CSRF_FIELD: token, "topic": ORDERS_EVENTS, "key": key.encode().hex(),
            "confirm": "yes"})
        assert released.status_code == 200
        assert "released" in text(released)
    assert (ORDERS_EVENTS, key.encode()) not in await dlq_admin.parked_keys(relayflow_system)


async def test_a_trusted_identity_header_signs_in_only_when_configured(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    order = await waiting(relayflow_kafka, relayflow_system)
    settings = console.settings.model_copy(update={
        "console_trusted_user_header": "X-Forwarded-User",
        "console_secret_key": SecretStr("another")})
    async with running_console(settings, users=directory()) as url, \
            httpx.AsyncClient(base_url=url) as client:
        nobody = await client.get("/approvals")
        assert nobody.status_code == 403
        assert "X-Forwarded-User" in text(nobody)
        stranger = await client.get("/approvals", headers={"X-Forwarded-User": "eve"})
        assert stranger.status_code == 403
        inbox = await client.get("/approvals", headers={"X-Forwarded-User": "ann"})
        assert inbox.status_code == 200
        assert order.order_id in text(inbox)
        decided = await client.post(
            f"/approvals/{order.order_id}/decision", headers={"X-Forwarded-User": "ann"},
            data=decision_form(csrf_of(inbox.text), decision="REJECTED", comment="too much"))
        assert "Rejected as orders-approvers/ann." in text(decided)
        # The proxy signs users in: a password posted here is not even checked.
        posted = await client.post("/login", data={
            "username": "ann", "password": "nope", CSRF_FIELD: csrf_of(inbox.text),
            "next": "/orders"})
        assert posted.status_code == 303
        assert posted.headers["location"] == "/orders"
    failed = await relayflow_kafka.wait_for(OrderFailed, key=order.order_id)
    assert failed.reason == "rejected"
    assert "orders-approvers/ann" in (failed.error or "")


async def test_an_identity_header_counts_only_from_a_trusted_proxy_address(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    # The test client connects from 127.0.0.1: in the default list, not in 10.0.0.0/8.
    trusted = console.settings.model_copy(update={
        "console_trusted_user_header": "X-Forwarded-User"})
    elsewhere = trusted.model_copy(update={"console_trusted_proxies": "10.0.0.0/8"})
    ann = {"X-Forwarded-User": "ann"}
    async with running_console(trusted, users=directory()) as url, \
            httpx.AsyncClient(base_url=url) as client:
        inbox = await client.get("/approvals", headers=ann)
        assert inbox.status_code == 200
        assert "Sign out" in inbox.text
    with caplog.at_level(logging.WARNING, logger="relayflow.console"):
        async with running_console(elsewhere, users=directory()) as url, \
                httpx.AsyncClient(base_url=url) as client:
            refused = await client.get("/approvals", headers=ann)
            assert refused.status_code == 403
            assert "identity header from an untrusted address" in text(refused).lower()
            assert "Sign out" not in refused.text  # nobody is signed in, not even on this page
            # Refused before anything else is looked at (here: the missing CSRF token).
            for answer in (await client.get("/", headers=ann),
                           await client.post("/logout", headers=ann)):
                assert answer.status_code == 403
                assert "untrusted address" in text(answer)
    warnings = [r.getMessage() for r in caplog.records if "not a trusted proxy" in r.getMessage()]
    assert len(warnings) == 3  # one a request
    assert all("X-Forwarded-User from 127.0.0.1" in w and "claimed ann" in w for w in warnings)


async def test_a_trusted_roles_header_gives_the_proxys_user_their_groups(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka) -> None:
    order = await waiting(relayflow_kafka, relayflow_system)
    settings = console.settings.model_copy(update={
        "console_trusted_user_header": "X-Forwarded-User",
        "console_trusted_roles_header": "X-Forwarded-Groups"})
    async with running_console(settings, users=directory()) as url, \
            httpx.AsyncClient(base_url=url) as client:
        zed = {"X-Forwarded-User": "zed", "X-Forwarded-Groups": "returns, orders-approvers"}
        inbox = await client.get("/approvals", headers=zed)
        assert order.order_id in inbox.text
        other = await client.get("/approvals", headers={"X-Forwarded-User": "zed",
                                                        "X-Forwarded-Groups": "returns"})
        assert other.status_code == 200
        assert order.order_id not in other.text
        none = await client.get("/approvals", headers={"X-Forwarded-User": "zed"})
        assert none.status_code == 403  # no role: no page
        assert order.order_id not in none.text
        operator = await client.get("/dead-letters", headers={
            "X-Forwarded-User": "zed", "X-Forwarded-Groups": "operator"})
        assert operator.status_code == 200


async def test_failed_sign_ins_lock_out_the_name_here_then_the_address_even_for_the_right_one(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    settings = console.settings.model_copy(update={
        "console_signin_attempts": 3, "console_signin_address_attempts": 5})
    async with running_console(settings, users=directory()) as url, \
            httpx.AsyncClient(base_url=url) as ann, httpx.AsyncClient(base_url=url) as max_, \
            httpx.AsyncClient(base_url=url) as bob:

        async def sign_in(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
            token = csrf_of((await client.get("/login")).text)
            return await client.post("/login", data={
                "username": name, "password": password, CSRF_FIELD: token, "next": "/orders"})

        with caplog.at_level(logging.WARNING, logger="relayflow.console.throttle"):
            for _ in range(2):
                assert (await sign_in(ann, "ann", "guess-1234")).status_code == 401
            third = await sign_in(ann, "ann", "guess-1234")
            assert third.status_code == 429
            right = await sign_in(ann, "ann", "pw-ann")
        assert right.status_code == 429
        assert 0 < int(right.headers["retry-after"]) <= 300
        assert "Too many failed sign-ins for ann from your address: sign-in is locked for" \
            in text(right)
        assert "even the right one does not sign you in" in text(right)
        assert (await ann.get("/approvals")).status_code == 303  # not signed in
        [line] = [r.getMessage() for r in caplog.records if r.name.endswith("throttle")]
        assert "user 'ann'" in line
        assert "client 127.0.0.1" in line
        assert "guess-1234" not in caplog.text
        # Another user from the same address signs in (3 failures of the address's 5).
        signed = await sign_in(max_, "max", "pw-max")
        assert signed.status_code == 303
        assert (await max_.get("/orders")).status_code == 200
        # Two more failures from this address, whatever the name: it is locked out.
        assert (await sign_in(bob, "bob", "guess-1234")).status_code == 401
        assert (await sign_in(bob, "bob", "guess-1234")).status_code == 429
        address = await sign_in(bob, "olga", "pw-olga")
        assert address.status_code == 429
        assert "Too many failed sign-ins from your address" in text(address)
        assert (await bob.get("/dead-letters")).status_code == 303
