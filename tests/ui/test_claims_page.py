"""Claimed inboxes on the web page: the token shown once with a copy button, and used to collect and look up."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from restapi.models import Inbox, Message
from restapi.tokens import token_hash
from tests.ui.conftest import DESKTOP, _open

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    """The web page, allowed to use the clipboard as a person who clicks Copy allows it."""
    yield from _open(browser, live_server, DESKTOP, permissions=["clipboard-read", "clipboard-write"])


def claim(page: Page, username: str) -> str:
    page.get_by_label("Username to claim").fill(username)
    page.get_by_role("button", name="Claim", exact=True).click()
    field = page.locator("#claim-token")
    expect(field).to_have_value(re.compile(r"^[A-Za-z0-9_-]{43}$"))
    return field.input_value()


def send(page: Page, username: str, text: str) -> int:
    page.get_by_label("Recipient's username").fill(username)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    result = page.locator("#send-result")
    expect(result).to_contain_text(f"sent to {username}")
    return int(re.search(r"Message (\d+)", result.inner_text()).group(1))


def test_claiming_shows_the_token_once_with_a_warning_and_copies_it(page: Page) -> None:
    token = claim(page, "ann")

    assert Inbox.objects.get(username="ann").token_hash == token_hash(token)
    expect(page.locator("#claim-result")).to_contain_text("You have claimed the inbox ann.")
    expect(page.locator("#claim-warning")).to_contain_text("shown only this once")
    page.get_by_role("button", name="Copy token").click()
    expect(page.locator("#claim-copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    # The page keeps no copy of its own: after a reload the token is gone for good.
    page.reload()
    expect(page.locator("#claim-result")).to_be_empty()
    assert token not in page.content()


def test_claiming_a_claimed_name_says_so_next_to_the_field(page: Page) -> None:
    claim(page, "ann")

    page.get_by_label("Username to claim").fill("ann")
    page.get_by_role("button", name="Claim", exact=True).click()

    expect(page.locator("#claim-username-error")).to_have_text("The inbox ann is claimed already.")
    expect(page.locator("#claim-result")).to_be_empty()


def test_a_claimed_inbox_is_collected_with_its_token_and_refused_without(page: Page) -> None:
    token = claim(page, "bob")
    send(page, "bob", "for bob only")

    page.get_by_label("Username", exact=True).fill("bob")
    page.get_by_role("button", name="Collect and expire").click()
    expect(page.locator("#collect-token-error")).to_contain_text("The inbox bob is claimed")
    assert Message.objects.get(username="bob").collected_at is None

    page.locator("#collect-token").fill("A" * 43)
    page.get_by_role("button", name="Collect and expire").click()
    expect(page.locator("#collect-token-error")).to_contain_text("not the current token")

    page.locator("#collect-token").fill(token)
    page.get_by_role("button", name="Collect and expire").click()
    expect(page.locator("#collect-result")).to_contain_text("Collected 1 message for bob.")
    expect(page.locator("#collect-result .message-text")).to_have_text("for bob only")
    expect(page.locator("#collect-token-error")).to_be_hidden()


def test_a_claimed_inboxs_message_is_looked_up_with_its_token(page: Page) -> None:
    token = claim(page, "cy")
    message_id = send(page, "cy", "private")

    page.get_by_label("Message id").fill(str(message_id))
    page.get_by_role("button", name="Look up", exact=True).click()
    expect(page.locator("#lookup-id-error")).to_contain_text("enter that inbox's token")
    expect(page.locator("#lookup-result")).to_be_empty()

    page.locator("#lookup-token").fill(token)
    page.get_by_role("button", name="Look up", exact=True).click()
    expect(page.locator("#lookup-result .message-text")).to_have_text("private")


def test_the_token_is_sent_in_a_header_and_never_in_a_url(page: Page) -> None:
    token = claim(page, "dee")
    urls: list[str] = []
    authorizations: list[str | None] = []

    def seen(request) -> None:
        urls.append(request.url)
        authorizations.append(request.headers.get("authorization"))

    page.on("request", seen)
    page.get_by_label("Username", exact=True).fill("dee")
    page.locator("#collect-token").fill(token)
    page.get_by_role("button", name="Collect and expire").click()
    expect(page.locator("#collect-result")).to_contain_text("No live messages for dee.")

    assert f"Bearer {token}" in authorizations
    assert not [url for url in urls if token in url]


@pytest.fixture
def page_without_script(browser: Browser, live_server) -> Iterator[Page]:
    """The page as a browser shows it when its script did not load or run."""
    yield from _open(browser, live_server, DESKTOP, java_script_enabled=False)


@pytest.mark.parametrize("form", ["collect", "watch", "lookup"])
def test_a_form_submitted_without_the_script_puts_no_token_in_the_url(page_without_script: Page, form: str) -> None:
    # Without the script the browser submits the form itself, as a GET of the page
    # with every named field in the query string: the URL lands in the history and
    # in every access log on the way.
    token = "T" * 43
    page = page_without_script
    first = page.locator(f"#{form}-form input").first
    first.fill("1")
    page.locator(f"#{form}-token").fill(token)
    with page.expect_navigation():
        page.locator(f"#{form}-token").press("Enter")

    assert "?" in page.url
    assert token not in page.url
