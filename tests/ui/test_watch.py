"""The page's live inbox: messages appear as they are sent, each acknowledged once it is on screen."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from restapi import services
from restapi.models import Message
from tests.support.processes import PATIENCE_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)


def watch(page: Page, username: str) -> None:
    page.get_by_label("Username to watch").fill(username)
    page.get_by_role("button", name="Watch").click()
    expect(page.locator("#watch-state")).to_have_attribute("data-state", "waiting")


def send_from(page: Page, username: str, text: str) -> int:
    page.get_by_label("Recipient's username").fill(username)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#send-result")).to_contain_text(f"sent to {username}")
    return int(page.locator("#send-result").inner_text().split()[1])


def test_a_message_sent_from_another_tab_appears_within_a_second(page: Page) -> None:
    watch(page, "wes")
    other_tab = page.context.new_page()
    other_tab.goto(page.url)

    message_id = send_from(other_tab, "wes", "hello live")
    sent = time.monotonic()

    item = page.locator(f"#watch-messages li[data-id='{message_id}']")
    expect(item).to_contain_text("hello live")
    assert time.monotonic() - sent < 1.0
    expect(page.locator("#watch-state")).to_have_attribute("data-state", "waiting")
    # On screen, so acknowledged: collected for good.
    deadline = time.monotonic() + PATIENCE_SECONDS
    while Message.objects.get(pk=message_id).collected_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Message.objects.get(pk=message_id).collected_at is not None


def test_stopping_leaves_messages_that_have_not_arrived_in_the_inbox(page: Page) -> None:
    watch(page, "sam")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#watch-state")).to_have_attribute("data-state", "stopped")
    expect(page.get_by_role("button", name="Watch")).to_be_visible()

    other_tab = page.context.new_page()
    other_tab.goto(page.url)
    message_id = send_from(other_tab, "sam", "after the stop")
    time.sleep(1)

    expect(page.locator("#watch-messages li")).to_have_count(0)
    assert Message.objects.get(pk=message_id).collected_at is None


def test_a_bad_username_is_shown_next_to_the_field_and_nothing_is_watched(page: Page) -> None:
    page.get_by_label("Username to watch").fill("not valid!")
    page.get_by_role("button", name="Watch").click()

    expect(page.locator("#watch-username-error")).to_be_visible()
    expect(page.get_by_role("button", name="Watch")).to_be_visible()


def test_a_claimed_inbox_is_watched_with_its_token_sent_only_in_a_header(page: Page) -> None:
    token = services.claim_inbox(username="tia")
    requests: list[tuple[str, str, str | None]] = []
    page.on(
        "request", lambda request: requests.append((request.method, request.url, request.headers.get("authorization")))
    )
    page.get_by_label("Username to watch").fill("tia")
    page.locator("#watch-token").fill(token)
    page.get_by_role("button", name="Watch").click()
    expect(page.locator("#watch-state")).to_have_attribute("data-state", "waiting")
    expect(page.locator("#watch-token")).to_be_disabled()

    other_tab = page.context.new_page()
    other_tab.goto(page.url)
    message_id = send_from(other_tab, "tia", "for the holder")

    expect(page.locator(f"#watch-messages li[data-id='{message_id}']")).to_contain_text("for the holder")
    deadline = time.monotonic() + PATIENCE_SECONDS
    while Message.objects.get(pk=message_id).collected_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # Acknowledged with the token too: the lease's DELETE is refused without it.
    assert Message.objects.get(pk=message_id).collected_at is not None
    leases = [(method, authorization) for method, url, authorization in requests if "/leases" in url]
    assert {method for method, _ in leases} == {"POST", "DELETE"}
    assert all(authorization == f"Bearer {token}" for _, authorization in leases)
    assert not [url for _, url, _ in requests if token in url]
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert token not in stored
    assert token not in page.url


def test_watching_a_claimed_inbox_without_its_token_says_so_next_to_the_token_field(page: Page) -> None:
    services.claim_inbox(username="uma")
    page.get_by_label("Username to watch").fill("uma")
    page.get_by_role("button", name="Watch").click()

    # The refusal may come only after the lease's wait (25 s) while waiting is not
    # yet authorized before it starts; the patience covers both.
    expect(page.locator("#watch-token-error")).to_contain_text(
        "The inbox uma is claimed", timeout=PATIENCE_SECONDS * 1000
    )
    expect(page.get_by_role("button", name="Watch")).to_be_visible()
    expect(page.locator("#watch-token")).to_be_enabled()
