"""
The Content-Security-Policy of the web page and the API docs, in a real browser:
each still works under it, and a script injected into either does not run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

pytestmark = pytest.mark.django_db(transaction=True)

INJECTED = '<script>window.injected = true</script><img src="/nowhere" onerror="window.injected = true">'


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A fresh page, with every policy violation the browser reports."""
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if _is_violation(message) else None  # type: ignore[func-returns-value]
        ),
    )
    yield page, violations
    context.close()


def _is_violation(message: ConsoleMessage) -> bool:
    return "Content Security Policy" in message.text


def _inject(route: Route) -> None:
    """What an injection flaw would do: the service's own answer, headers and all, with a script added."""
    response = route.fetch()
    route.fulfill(response=response, body=response.text().replace("</body>", INJECTED + "</body>"))


@pytest.mark.parametrize("path", ["/", "/api/docs/"])
def test_the_policy_allows_only_the_services_own_scripts_and_styles(browser_page, live_server, path: str) -> None:
    page, _ = browser_page
    response = page.goto(live_server.url + path)

    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in policy


@pytest.mark.parametrize("path", ["/", "/api/docs/"])
def test_an_injected_script_does_not_run(browser_page, live_server, path: str) -> None:
    page, violations = browser_page
    page.route(live_server.url + path, _inject)

    page.goto(live_server.url + path)
    page.wait_for_load_state("load")

    assert page.evaluate("window.injected === undefined")
    expect(page.locator("body")).to_be_visible()
    assert any("script" in violation for violation in violations), violations


def test_the_page_works_under_the_policy(browser_page, live_server) -> None:
    page, violations = browser_page
    page.goto(live_server.url + "/")

    page.get_by_label("Recipient's username").fill("ann")
    page.get_by_label("Message", exact=True).fill("under a policy")
    page.get_by_role("button", name="Send").click()

    expect(page.locator("#send-result")).to_contain_text("sent to ann")
    assert violations == []


def test_swagger_ui_works_under_the_policy(browser_page, live_server) -> None:
    page, violations = browser_page
    page.goto(live_server.url + "/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Ephemeral Messaging Service")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.get_by_text("/chats/{username}", exact=True)).to_be_visible()
    assert violations == []
