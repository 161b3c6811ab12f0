"""A real browser for the console tests: Debian's Chromium driven by Playwright.

Playwright comes from PyPI; the browser is Debian's ``chromium`` package
(``make browser`` installs it; never ``playwright install``). Without it the
browser tests skip, saying why, except in CI (``CI`` set), where they fail.
Every page a test looks at is saved as a screenshot in
``<basetemp>/console-screenshots`` and, when ``RELAYFLOW_SCREENSHOTS_DIR`` is
set, there too. A browser profile (``context``) fails its test if Chromium
reported a Content-Security-Policy violation on any of its pages: the
console's own pages must need nothing the policy refuses.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

from tests.integration.console.rig import Console

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
"""An iPhone 12-14 sized viewport (CSS pixels)."""
WAIT_MS = 30_000
"""Bound on waiting for something to show up on a page."""
CSP_REFUSAL = "Content Security Policy"
"""In each message Chromium logs when the page's Content-Security-Policy refuses something."""

# A context's default timeout bounds actions only; ``expect`` has its own (5 s), which a
# loaded CI machine can exceed between an approval's tap and its card's answer.
expect.set_options(timeout=WAIT_MS)


def need_chromium() -> None:
    """Skip (fail in CI) when Debian's chromium is not installed."""
    if CHROMIUM.exists():
        return
    message = f"Debian's chromium is not installed ({CHROMIUM}); `make browser` installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium."""
    need_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass(frozen=True)
class Screenshots:
    """Where screenshots go.

    Attributes:
        folders: Every folder a screenshot is saved in.
    """

    folders: tuple[Path, ...]

    async def take(self, page: Page, name: str) -> None:
        """Save the whole page as ``<name>.png`` in each folder."""
        shot = await page.screenshot(full_page=True)
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.png").write_bytes(shot)


def csp_refusals(profile: BrowserContext) -> list[str]:
    """The Content-Security-Policy violations Chromium reports on the profile's pages, from now."""
    refused: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if CSP_REFUSAL in message.text:
            refused.append(f"{message.page.url if message.page else '?'}: {message.text}")

    profile.on("console", seen)
    return refused


@asynccontextmanager
async def context(browser: Browser, viewport: dict[str, int]) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) of this viewport size; no CSP violation on its pages."""
    phone = viewport == PHONE
    made = await browser.new_context(viewport=viewport,  # type: ignore[arg-type]
                                     is_mobile=phone, has_touch=phone,
                                     device_scale_factor=2 if phone else 1)
    made.set_default_timeout(WAIT_MS)
    refused = csp_refusals(made)
    try:
        yield made
        assert refused == [], "\n".join(refused)
    finally:
        await made.close()


async def sign_in(page: Page, console: Console, name: str,
                  screenshots: Screenshots | None = None) -> None:
    """Sign in through the form, as a person does."""
    await page.goto(f"{console.url}/login")
    if screenshots is not None:
        await screenshots.take(page, "login")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(f"pw-{name}")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def fits(page: Page) -> None:
    """The page needs no sideways scrolling (tables scroll inside their own box)."""
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the viewport"


LIVE = '[hx-trigger*="every"]'
"""The parts of a page htmx refreshes on a timer (the live pages' polls)."""


async def one_poll(page: Page) -> bool:
    """Return once a live page's next poll is swapped in (True); at once on a page without one."""
    if not await page.locator(LIVE).count():
        return False
    await page.evaluate("""() => new Promise(settled => document.body.addEventListener(
        "htmx:afterSettle", () => settled(null), {once: true}))""")
    return True
