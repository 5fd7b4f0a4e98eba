"""The page's live inbox: messages appear as they are sent, each acknowledged once it is on screen."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

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
