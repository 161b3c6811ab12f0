"""The console in a real browser (Debian's Chromium, Playwright) on the real stack.

A person signs in, sees an approval request arrive without reloading,
approves it and watches the order complete; sees another escalate, another
decided elsewhere and another time out, live; an approver of another group
neither sees nor can post it; an operator replays a parked key and it flows
again; a batch's progress bar reaches 100%. At desktop and phone sizes, every
page fits the screen. Each page is saved as a screenshot.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from relayflow.config.settings import Settings
from relayflow.console.sessions import CSRF_FIELD
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalEscalated,
    ApprovalRequested,
    BatchRequested,
    OrderCompleted,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.reference.workflows.approval import approval_id_for
from relayflow.testing.kafka import AppKafka
from tests.helpers.approver_keys import signed
from tests.helpers.support import order_placed
from tests.integration.console.browser import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    Screenshots,
    context,
    csp_refusals,
    fits,
    one_poll,
    sign_in,
)
from tests.integration.console.rig import Console, csrf_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REFERENCE = ReferenceSettings()
"""The reference app's settings, as its worker reads them (the same environment)."""


def big(system: Settings, timeout_seconds: int | None = None) -> OrderPlaced:
    """An order that waits for approval (a SKU of its own: stock never runs out)."""
    return order_placed(sku=f"SKU-WEB-{uuid.uuid4().hex[:8]}", quantity=1,
                        unit_price_cents=REFERENCE.approval_threshold_cents,
                        approval_timeout_seconds=timeout_seconds)


async def requested(system: Settings, kafka: AppKafka) -> OrderPlaced:
    """A ``big`` order sent, once its saga asked for the approval."""
    order = big(system)
    await kafka.send(order)
    await kafka.wait_for(ApprovalRequested, key=order.order_id)
    return order


def card(page: Page, order: OrderPlaced, status: str | None = None) -> Locator:
    selector = f'article[data-order="{order.order_id}"]'
    return page.locator(selector + (f'[data-status="{status}"]' if status else ""))


async def test_an_approver_approves_a_request_as_it_arrives_and_watches_the_order_complete(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        browser: Browser, screenshots: Screenshots) -> None:
    async with context(browser, DESKTOP) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "ann", screenshots)
        await expect(page.get_by_role("heading", name="Approvals for orders-approvers")
                     ).to_be_visible()
        order = big(relayflow_system)
        await relayflow_kafka.send(order)
        waiting = page.locator(f'article[data-order="{order.order_id}"][data-status="waiting"]')
        await expect(waiting).to_be_visible()  # polled in: no reload
        await expect(waiting).to_contain_text("1,000.00 EUR")
        await expect(waiting.locator(".countdown")).to_contain_text("left")
        await fits(page)
        await screenshots.take(page, "approvals-desktop")
        await waiting.get_by_label("Comment").fill("known customer, fine")
        await waiting.get_by_role("button", name="Approve").click()
        await expect(page.locator(f'article[data-order="{order.order_id}"]')).to_contain_text(
            "Approved as orders-approvers/ann.")
        await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
        await page.get_by_role("link", name="Orders", exact=True).click()
        await page.get_by_label("Order id").fill(order.order_id)
        await page.get_by_role("button", name="Show").click()
        await expect(page.locator("#saga-status")).to_have_text("OrderCompleted")  # polled in
        await expect(page.locator("#outcomes")).to_contain_text("OrderCompleted")
        await expect(page.locator(".timeline")).to_contain_text(
            "decision received: APPROVED by orders-approvers/ann")
        await fits(page)
        await screenshots.take(page, "order-desktop")


async def test_the_inbox_follows_escalation_decisions_elsewhere_and_time_outs_live(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        browser: Browser) -> None:
    async with context(browser, DESKTOP) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "ann")
        decided, idle = big(relayflow_system), big(relayflow_system, timeout_seconds=3)
        for order in (decided, idle):
            await relayflow_kafka.send(order)
        await expect(card(page, decided, "waiting")).to_be_visible()
        await expect(card(page, idle, "waiting")).to_be_visible()
        requested = await relayflow_kafka.wait_for(ApprovalRequested, key=decided.order_id)
        await relayflow_kafka.send(signed(ApprovalDecided(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
            approval_id=approval_id_for(decided.order_id), order_id=decided.order_id,
            decision="APPROVED", decided_by="orders-approvers/zoe")),
            correlation_id=requested.correlation_id)
        await expect(card(page, decided, "approved")).to_contain_text(
            "Approved by orders-approvers/zoe.")
        await relayflow_kafka.wait_for(ApprovalEscalated, key=idle.order_id)
        await expect(card(page, idle, "waiting")).to_contain_text("escalated to orders-managers")
        await expect(card(page, idle, "timed-out")).to_contain_text("Timed out")


async def test_an_approver_of_another_group_neither_sees_nor_posts_it(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        browser: Browser) -> None:
    order = await requested(relayflow_system, relayflow_kafka)
    async with context(browser, DESKTOP) as profile:  # the control: its group's approver sees it
        page = await profile.new_page()
        await sign_in(page, console, "ann")
        await page.goto(f"{console.url}/approvals")
        await expect(card(page, order)).to_have_count(1)
    async with context(browser, DESKTOP) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "bob")
        await page.goto(f"{console.url}/approvals")
        await expect(page.locator(".empty")).to_have_text("Nothing waits for you.")
        await expect(card(page, order)).to_have_count(0)
        token = csrf_of(await page.content())
        posted = await page.request.post(
            f"{console.url}/approvals/{order.order_id}/decision",
            form={CSRF_FIELD: token, "decision": "APPROVED", "event_id": str(uuid.uuid4())})
        assert posted.status == 403
        assert "bob is not among the approvers" in await posted.text()


async def test_an_operator_replays_a_parked_key_and_it_flows_again(
        console: Console, relayflow_kafka: AppKafka, browser: Browser,
        screenshots: Screenshots) -> None:
    order = order_placed()
    await relayflow_kafka.send_bytes(ORDERS_EVENTS, b"not avro", key=order.order_id)
    poison = await relayflow_kafka.wait_for_dead_letter(ORDERS_EVENTS, key=order.order_id)
    await relayflow_kafka.send(order)  # parked behind the poison record
    relayflow_kafka.arrived.remove(poison)
    parked = await relayflow_kafka.wait_for_dead_letter(ORDERS_EVENTS, key=order.order_id)
    assert parked.reason == "parked"
    async with context(browser, DESKTOP) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "olga")
        await expect(page.get_by_role("heading", name="Dead letters and parked keys")
                     ).to_be_visible()
        row = page.locator(f'#parked tr[data-key="{order.order_id}"]')
        await expect(row).to_contain_text("unknown-framing")
        await fits(page)
        await screenshots.take(page, "dead-letters-desktop")
        await page.locator("#letters").get_by_role("link", name=poison.coordinates).click()
        await expect(page.locator("#headers")).to_contain_text("dlq-reason")
        await screenshots.take(page, "dead-letter-desktop")
        await page.go_back()
        await row.get_by_role("link", name="Skip first, replay rest").click()
        await expect(page.locator("#letters")).to_contain_text("parked")
        await screenshots.take(page, "replay-confirm-desktop")
        await page.get_by_role("button", name="Yes, replay parked only").click()
        await expect(page.get_by_role("status")).to_contain_text("1 record(s) back on "
                                                                 "orders.events")
    completed = await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
    assert completed.order_id == order.order_id


async def test_a_batch_progress_bar_reaches_100_percent(
        console: Console, relayflow_kafka: AppKafka, browser: Browser,
        screenshots: Screenshots) -> None:
    batch = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=f"b-web-{uuid.uuid4().hex[:8]}", item_count=60, seed=3,
                           fail_every=20, chunk_size=10, max_concurrent_children=2,
                           progress_every_chunks=1)
    async with context(browser, DESKTOP) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "olga")
        await relayflow_kafka.send(batch)
        await page.get_by_role("link", name="Batches", exact=True).click()
        bar = page.locator(f'article[data-batch="{batch.batch_id}"] progress')
        await expect(bar).to_have_attribute("value", "100", timeout=60_000)
        await expect(page.locator(f'article[data-batch="{batch.batch_id}"]')).to_contain_text(
            "57 ok · 3 failed")
        await fits(page)
        await screenshots.take(page, "batches-desktop")
        await page.get_by_role("link", name="failed items").first.click()
        await expect(page.locator("#failures tbody tr")).to_have_count(3)
        await screenshots.take(page, "batch-failures-desktop")
        # The same batch on the Status page: what `relayflow status` shows, for any app.
        await page.get_by_role("link", name="Status", exact=True).click()
        await page.get_by_label("Business key").fill(batch.batch_id)
        await page.get_by_role("button", name="Show").click()
        shown = page.locator(f'section[data-workflow="batch-{batch.batch_id}"]')
        await expect(shown.get_by_role("heading", level=2)).to_contain_text("completed")
        await expect(shown.locator("ul.outcomes")).to_contain_text("BatchCompleted")
        await fits(page)
        await screenshots.take(page, "status-desktop")


async def test_on_a_phone_every_page_fits_and_an_approval_is_one_tap(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        browser: Browser, screenshots: Screenshots) -> None:
    order = await requested(relayflow_system, relayflow_kafka)
    async with context(browser, PHONE) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "ann")
        waiting = card(page, order, "waiting")
        await expect(waiting).to_be_visible()
        approve = waiting.get_by_role("button", name="Approve")
        box = await approve.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
        await fits(page)
        await screenshots.take(page, "approvals-phone")
        await approve.tap()
        await expect(card(page, order)).to_contain_text("Approved as orders-approvers/ann.")
        await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
        for path, name in ((f"/orders?order_id={order.order_id}", "order-phone"),
                           ("/batches", "batches-phone")):
            await page.goto(console.url + path)
            await fits(page)
            await screenshots.take(page, name)
        await expect(page.get_by_role("link", name="Dead letters")).to_have_count(0)


async def test_the_browser_enforces_the_policy_and_the_console_needs_nothing_it_refuses(
        console: Console, browser: Browser) -> None:
    # The control of every profile's "no violation": a script element put into a page (as
    # markup that escaped escaping would be) does not run, and the refusal is seen.
    profile = await browser.new_context()
    try:
        refused = csp_refusals(profile)
        page = await profile.new_page()
        await sign_in(page, console, "olga")
        await page.evaluate("""() => {
            const injected = document.createElement("script");
            injected.textContent = "document.body.dataset.injected = 'ran'";
            document.body.append(injected);
        }""")
        async with asyncio.timeout(10):
            while not refused:  # noqa: ASYNC110 - the browser reports it when it reports it
                await asyncio.sleep(0.05)
        assert await page.evaluate("document.body.dataset.injected") is None
        assert "inline script" in refused[0]
    finally:
        await profile.close()
    # The console's own pages, htmx polling included, need nothing the policy refuses.
    polled = []
    async with context(browser, DESKTOP) as clean:
        page = await clean.new_page()
        for name, paths in (("olga", ("/dead-letters", "/orders", "/batches", "/status")),
                            ("ann", ("/approvals",))):
            await sign_in(page, console, name)
            for path in paths:
                await page.goto(console.url + path)
                async with asyncio.timeout(WAIT_MS / 1000):
                    if await one_poll(page):
                        polled.append(path)
            await page.get_by_role("button", name="Sign out").click()
    assert "/approvals" in polled  # the inbox is live: a poll's answer was swapped in
