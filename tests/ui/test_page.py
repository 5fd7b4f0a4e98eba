"""The web page in a real browser: each test does what a person would and checks what the page shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from restapi.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def send(page: Page, username: str, text: str, timeout: str = "") -> None:
    """Fill in and submit the send form; the previous answer is cleared as the form is submitted."""
    page.get_by_label("Recipient's username").fill(username)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Lifetime in seconds").fill(timeout)
    page.get_by_role("button", name="Send").click()


def test_a_new_answer_never_shows_beside_the_last_one(page: Page) -> None:
    send(page, "gus", "one")
    expect(page.locator("#send-result")).to_contain_text("sent to gus")
    send(page, "not valid!", "two")
    expect(page.locator("#send-username-error")).to_be_visible()
    expect(page.locator("#send-result")).to_be_empty()


def test_sending_a_message_shows_its_id_and_when_it_expires(page: Page) -> None:
    send(page, "ann", "See you at noon", "120")

    result = page.locator("#send-result")
    expect(result).to_contain_text(re.compile(r"Message \d+ sent to ann\."))
    message_id = int(re.search(r"Message (\d+)", result.inner_text()).group(1))
    stored = Message.objects.get(pk=message_id)
    assert (stored.username, stored.text) == ("ann", "See you at noon")
    # The expiry shown is the stored one, in UTC and as a time from now.
    expected = stored.expiration_date.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    expect(page.locator("#send-expiry")).to_contain_text("It expires at")
    expect(page.locator("#send-expiry")).to_contain_text(f"{expected} UTC")
    expect(page.locator("#send-expiry")).to_contain_text(re.compile(r"in (2 minutes|119 seconds|120 seconds)"))
    # The text field is cleared for the next message; the recipient stays.
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    expect(page.get_by_label("Recipient's username")).to_have_value("ann")


def test_collecting_shows_the_messages_and_says_they_are_now_expired(page: Page) -> None:
    expect(page.locator("#collect-warning")).to_contain_text("Collecting expires the messages it shows.")
    send(page, "bob", "first")
    expect(page.locator("#send-result")).to_contain_text("sent to bob")
    send(page, "bob", "second line\nwith a <b>tag</b>")
    expect(page.locator("#send-result")).to_contain_text("sent to bob")

    page.get_by_label("Username", exact=True).fill("bob")
    page.get_by_role("button", name="Collect and expire").click()

    result = page.locator("#collect-result")
    expect(result).to_contain_text("Collected 2 messages for bob. They are now expired: nobody can collect them")
    items = result.locator("li .message-text")
    expect(items).to_have_text(["first", "second line\nwith a <b>tag</b>"])  # text, never HTML
    assert Message.objects.filter(username="bob", collected_at__isnull=False).count() == 2

    # Collected means handed out: a second collection finds nothing.
    page.get_by_role("button", name="Collect and expire").click()
    expect(result).to_have_text("No live messages for bob.")

    send(page, "bob", "third")
    expect(page.locator("#send-result")).to_contain_text("sent to bob")
    page.get_by_role("button", name="Collect and expire").click()
    expect(result).to_contain_text("Collected 1 message for bob. It is now expired: nobody can collect it again.")
    expect(result.locator("li .message-text")).to_have_text(["third"])


def test_looking_a_message_up_by_id_shows_it_without_expiring_it(page: Page) -> None:
    message = Message.objects.create(
        username="cy",
        text="hello there",
        created_at=datetime.now(UTC),
        expiration_date=datetime.now(UTC) + timedelta(hours=1),
    )
    page.get_by_label("Message id").fill(str(message.pk))
    page.get_by_role("button", name="Look up").click()

    result = page.locator("#lookup-result")
    expect(result).to_contain_text(f"Message {message.pk} (live)")
    expect(result.locator("dd").nth(0)).to_have_text("cy")
    expect(result.locator("dd").nth(1)).to_have_text("hello there")
    expect(result).to_contain_text(message.expiration_date.strftime("%Y-%m-%d %H:%M:%S") + " UTC")
    message.refresh_from_db()
    assert message.collected_at is None


def test_looking_up_a_missing_id_shows_the_error_next_to_the_id(page: Page) -> None:
    page.get_by_label("Message id").fill("987654")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#lookup-id-error")).to_have_text(
        "No message with id 987654. If it was sent to a claimed inbox, enter that inbox's token."
    )
    expect(page.get_by_label("Message id")).to_have_attribute("aria-invalid", "true")


def test_invalid_input_shows_each_api_error_next_to_its_field(page: Page) -> None:
    send(page, "not a name!", "   ", "ten")

    expect(page.locator("#send-username-error")).to_have_text(
        "Enter a username of 1 to 150 characters: letters, digits and @ . + - _ only."
    )
    expect(page.locator("#send-text-error")).to_have_text("This field may not be blank.")
    expect(page.locator("#send-timeout-error")).to_have_text(re.compile(r"^Must be a whole number of seconds"))
    expect(page.get_by_label("Recipient's username")).to_have_attribute("aria-invalid", "true")
    # The first field in error takes the focus, so a keyboard user lands on it.
    expect(page.get_by_label("Recipient's username")).to_be_focused()
    expect(page.locator("#send-result")).to_be_empty()
    assert not Message.objects.exists()

    # Fixing the input clears the errors.
    send(page, "dee", "fixed", "")
    expect(page.locator("#send-result")).to_contain_text("sent to dee")
    expect(page.locator("#send-username-error")).to_be_hidden()
    expect(page.locator("#send-text-error")).to_be_hidden()


def test_the_page_works_with_the_keyboard_alone(page: Page) -> None:
    page.keyboard.press("Tab")  # the skip link
    expect(page.get_by_role("link", name="Skip to the forms")).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(3):  # past the skip link target to the first field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "send-username":
            break
    expect(page.get_by_label("Recipient's username")).to_be_focused()
    page.keyboard.type("eve")
    page.keyboard.press("Tab")
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Tab")
    page.keyboard.type("30")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    # The focused control is visibly outlined.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    expect(page.locator("#send-result")).to_contain_text("sent to eve")
    assert Message.objects.get().text == "typed, not clicked"


def test_the_page_fits_a_phone_screen(phone_page: Page) -> None:
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone: {width}px wide"
    send_button = phone_page.get_by_role("button", name="Send").bounding_box()
    assert send_button["height"] >= 44
    assert send_button["width"] > 300
    send(phone_page, "fay", "from a phone")
    expect(phone_page.locator("#send-result")).to_contain_text("sent to fay")
