"""
A real headless browser for the page tests: Debian's chromium, driven by Playwright.

The browser is the system's (``apt-get install chromium``); Playwright never
downloads one. The service is pytest-django's live server, which also serves
the static files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.support.tools import missing

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous, for a machine busy with other work; a passing check returns as soon as it holds.
expect.set_options(timeout=10_000)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    # Playwright's sync API keeps an asyncio loop on the main thread, so Django's
    # guard against blocking calls inside async code refuses the tests' database
    # work, although nothing asynchronous runs beside it. The guard is lifted
    # while the browser tests run, and put back after.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            yield playwright


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing(str(CHROMIUM), install="apt-get install -y chromium, or set CHROMIUM_PATH")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _open(browser: Browser, live_server, viewport: dict[str, int], **options) -> Iterator[Page]:
    # A fixed zone and locale, so that what the page shows can be compared with the API's UTC times.
    context = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-GB", **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url + "/")
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    """The web page on a desktop-sized window."""
    yield from _open(browser, live_server, DESKTOP)


@pytest.fixture
def phone_page(browser: Browser, live_server) -> Iterator[Page]:
    """The web page on a phone-sized touch screen."""
    yield from _open(browser, live_server, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
