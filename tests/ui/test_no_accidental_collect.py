"""The page never collects an inbox unless the person presses the button, and a browser's prefetch collects nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, Request, expect

from restapi.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_message(username: str, text: str) -> Message:
    now = datetime.now(UTC)
    return Message.objects.create(
        username=username, text=text, created_at=now, expiration_date=now + timedelta(hours=1)
    )


def inbox_requests(page: Page) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if "/chats/" in request.url else None)
    return seen


def test_typing_a_username_collects_nothing_until_the_button_is_pressed(page: Page) -> None:
    message = waiting_message("gil", "still here")
    seen = inbox_requests(page)

    field = page.get_by_label("Username", exact=True)
    field.fill("gil")
    field.press("Tab")
    page.get_by_label("Message id").focus()
    page.wait_for_load_state("networkidle")
    page.reload()
    page.wait_for_load_state("networkidle")

    assert seen == []
    message.refresh_from_db()
    assert message.collected_at is None

    page.get_by_label("Username", exact=True).fill("gil")
    page.get_by_role("button", name="Collect and expire").click()
    expect(page.locator("#collect-result")).to_contain_text("Collected 1 message for gil.")
    assert [request.method for request in seen] == ["GET"]


def test_a_browser_prefetching_an_inbox_link_collects_nothing(page: Page) -> None:
    message = waiting_message("hal", "not yet read")

    with page.expect_response(lambda response: "/chats/hal" in response.url) as prefetched:
        page.evaluate(
            """() => {
                const link = document.createElement("link");
                link.rel = "prefetch";
                link.href = "/chats/hal";
                document.head.append(link);
            }"""
        )
    response = prefetched.value
    headers = response.request.all_headers()
    assert headers.get("sec-purpose", headers.get("purpose", "")).startswith("prefetch")
    assert response.status == 403

    message.refresh_from_db()
    assert message.collected_at is None
