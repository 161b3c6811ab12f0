"""The console of another application: the tickets example, on the real stack, in a real browser.

The console serves the configured application (``RELAYFLOW_APP``): the
tickets' dead letters and parked keys are listed, shown decoded with the
tickets codec, replayed and released; the reference application's pages
are not in the navigation and their URLs answer with one line, 404.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import Browser, expect

from examples.tickets.app import APP
from examples.tickets.events import TicketAnswered, TicketOpened, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS
from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.operate import dlq as dlq_admin
from relayflow.testing.kafka import AppKafka
from tests.integration.console.browser import DESKTOP, Screenshots, context, fits, sign_in
from tests.integration.console.rig import Console, serving, signed_in, text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TICKETS_APP = "examples.tickets.app:APP"


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


@pytest.fixture(scope="module")
async def console(relayflow_system: Settings) -> AsyncIterator[Console]:
    async with serving(relayflow_system, app=TICKETS_APP) as served:
        yield served


def opened(ticket_id: str) -> TicketOpened:
    return TicketOpened(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                        ticket_id=ticket_id, customer_id="c-7", subject="printer on fire")


def resolved(ticket_id: str) -> TicketResolved:
    """A tickets outcome: decodable with the tickets codec, and no route takes it as input."""
    return TicketResolved(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          correlation_id="support-1", causation_id="cause-1",
                          ticket_id=ticket_id, assigned_agent="ada", answered_by="grace",
                          waited_seconds=5)


async def parked_behind_poison(kafka: AppKafka, ticket_id: str) -> None:
    """A poison record of the ticket (no route), then its opening, parked behind it."""
    await kafka.send(resolved(ticket_id), topic=TICKETS_EVENTS)
    poison = await kafka.wait_for_dead_letter(TICKETS_EVENTS, key=ticket_id)
    assert poison.reason == "no-route"
    await kafka.send(opened(ticket_id))
    kafka.arrived.remove(poison)
    parked = await kafka.wait_for_dead_letter(TICKETS_EVENTS, key=ticket_id)
    assert parked.reason == "parked"


async def released(settings: Settings, ticket_id: str, seconds: float = 30.0) -> None:
    """Wait until the bridge released the ticket's key (after a replay's last record)."""
    key = (TICKETS_EVENTS, ticket_id.encode())
    async with asyncio.timeout(seconds):
        while key in await dlq_admin.parked_keys(settings):  # noqa: ASYNC110 - Kafka, polled
            await asyncio.sleep(0.5)


async def test_an_operator_lists_shows_replays_and_releases_the_tickets_dead_letters(
        console: Console, relayflow_system: Settings, relayflow_kafka: AppKafka,
        browser: Browser, screenshots: Screenshots) -> None:
    replayed, dropped = f"T-{uuid.uuid4().hex[:8]}", f"T-{uuid.uuid4().hex[:8]}"
    for ticket_id in (replayed, dropped):
        await parked_behind_poison(relayflow_kafka, ticket_id)
    async with context(browser, DESKTOP) as profile:
        page = await profile.new_page()
        await sign_in(page, console, "olga")
        await expect(page.get_by_role("heading", name="Dead letters and parked keys")
                     ).to_be_visible()
        nav = page.locator("header nav")
        await expect(nav.get_by_role("link")).to_have_text(["Dead letters", "Activities", "Status"])
        row = page.locator(f'#parked tr[data-key="{replayed}"]')
        await expect(row).to_contain_text("no-route")
        letters = page.locator("#letters")
        await expect(letters).to_contain_text(replayed)
        await expect(letters).to_contain_text("TicketResolved")
        await expect(page.get_by_role("heading", name="Dead letters (")).not_to_contain_text(
            "0 of 0")
        await fits(page)
        await screenshots.take(page, "tickets-dead-letters-desktop")
        # The poison record, decoded with the tickets codec.
        await row.get_by_role("link", name=f"{TICKETS_EVENTS}.dlq/").click()
        await expect(page.locator("#headers")).to_contain_text("no route for "
                                                               "tickets.events.TicketResolved")
        event = page.locator("#event")
        await expect(event).to_contain_text(f'"ticket_id": "{replayed}"')
        await expect(event).to_contain_text('"assigned_agent": "ada"')
        await screenshots.take(page, "tickets-dead-letter-desktop")
        await page.go_back()
        await row.get_by_role("link", name="Skip first, replay rest").click()
        await expect(page.locator("#letters")).to_contain_text("parked")
        await page.get_by_role("button", name="Yes, replay parked only").click()
        await expect(page.get_by_role("status")).to_contain_text(
            f"1 record(s) back on {TICKETS_EVENTS}")
        await page.goto(f"{console.url}/dead-letters")
        await page.locator(f'#parked tr[data-key="{dropped}"]').get_by_role(
            "link", name="Release").click()
        await page.get_by_role("button", name="Yes, release").click()
        await expect(page.get_by_role("status")).to_contain_text(
            f"{dropped} on {TICKETS_EVENTS} released")
    assert (TICKETS_EVENTS, dropped.encode()) not in await dlq_admin.parked_keys(
        relayflow_system)
    # The replayed opening started the ticket's workflow: its answer resolves it.
    await released(relayflow_system, replayed)
    await relayflow_kafka.send(TicketAnswered(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), ticket_id=replayed,
        answered_by="grace", answer="unplug it"))
    done = await relayflow_kafka.wait_for(TicketResolved, key=replayed)
    assert done.answered_by == "grace"


@pytest.mark.parametrize(("path", "title"), [
    ("/orders", "Orders"), ("/orders?order_id=A-1", "Orders"), ("/approvals", "Approvals"),
    ("/approvals/A-1/decision", "Approvals"), ("/batches", "Batches"),
    ("/batches/b-1/failures", "Batches"),
])
async def test_reference_pages_answer_with_one_line_and_404(console: Console, path: str,
                                                            title: str) -> None:
    async with signed_in(console, "ann") as (client, _):
        answer = await client.get(path)
    assert answer.status_code == 404
    assert (f"{title} is a page of the reference application; application 'tickets' has "
            "none.") in text(answer)
    assert 'href="/orders"' not in answer.text
    assert 'href="/approvals"' not in answer.text


async def test_the_navigation_shows_only_what_the_application_has(console: Console) -> None:
    async with signed_in(console, "olga") as (client, _):
        home = await client.get("/", follow_redirects=True)
        assert home.url.path == "/dead-letters"
        assert 'href="/dead-letters"' in home.text
        for reference in ("/approvals", "/orders", "/batches"):
            assert f'href="{reference}"' not in home.text
        unknown = await client.get("/dead-letters", params={"topic": "orders.events"})
        assert unknown.status_code == 400
        assert f"Unknown topic 'orders.events': one of {TICKETS_EVENTS}." in text(unknown)
    async with signed_in(console, "ann") as (client, _):
        nothing = await client.get("/")
        assert nothing.status_code == 200
        assert ("The console of application 'tickets' has no page for the roles "
                "orders-approvers.") in text(nothing)
    async with httpx.AsyncClient(base_url=console.url) as client:
        anonymous = await client.get("/nowhere")
        assert anonymous.status_code == 404
        assert "There is no page /nowhere in the console of application 'tickets'." \
            in text(anonymous)
