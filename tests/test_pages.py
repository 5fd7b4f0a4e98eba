"""What browsers and API clients get from the same URLs: the page, the browsable API, the docs, versions."""

from __future__ import annotations

import html
import os
import re

import pytest
from django.test import Client

from restapi.models import Message

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(HTTP_HOST="localhost")


def test_a_browser_at_the_root_gets_the_web_page(client: Client) -> None:
    response = client.get("/", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    for form in ("send-form", "collect-form", "lookup-form"):
        assert f'id="{form}"' in page
    assert "Collecting expires the messages it shows." in page
    # The page states the limits the API enforces, from the same settings.
    assert "Up to 512 characters." in page
    assert "0 to 31536000; 60 if left empty." in page


@pytest.mark.parametrize("accept", ["application/json", "application/json; version=1", "*/*", None])
def test_an_api_client_at_the_root_gets_the_api_root(client: Client, accept: str | None) -> None:
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.get("/", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["service"] == "Ephemeral Messaging Service"
    assert body["endpoints"]["send"] == {"method": "POST", "url": "http://localhost/chat"}
    assert body["docs"] == "http://localhost/api/docs/"
    assert body["schema"] == "http://localhost/api/schema/"


def test_the_page_follows_the_configured_limits(client: Client, chat_settings) -> None:
    chat_settings(MAX_TEXT_LENGTH=200, MAX_TIMEOUT=3600, DEFAULT_TIMEOUT=30)
    page = client.get("/", HTTP_ACCEPT=BROWSER_ACCEPT).content.decode()
    assert "Up to 200 characters." in page
    assert "0 to 3600; 30 if left empty." in page


@pytest.mark.parametrize(
    "path", ["/?format=api", "/chat", "/chat/", "/chat/1", "/chat/1/", "/chats/ann", "/chats/ann/"]
)
def test_the_browsable_api_stays_available_on_every_endpoint(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT=BROWSER_ACCEPT)
    # GET /chat is not allowed (405) and /chat/1 does not exist (404): still rendered for a browser.
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'class="prettyprint"' in page
    assert "Django REST framework" in page


def test_the_browsable_api_can_send_a_message(client: Client) -> None:
    response = client.post(
        "/chat", '{"username": "ann", "text": "hi"}', content_type="application/json", HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 201
    assert response["Content-Type"].startswith("text/html")
    assert "HTTP 201 Created" in response.content.decode()


def test_the_openapi_schema_is_served_at_a_stable_url(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    body = schema["components"]["schemas"]["MessageCreateRequest"]
    assert body["properties"]["username"]["maxLength"] == 150
    assert body["properties"]["text"]["maxLength"] == 512
    assert body["additionalProperties"] is False
    assert set(schema["paths"]["/chat"]["post"]["responses"]) == {"201", "400", "406", "413", "415", "429", "503"}
    assert "Retry-After" in schema["paths"]["/chat"]["post"]["responses"]["429"]["headers"]
    assert "Location" in schema["paths"]["/chat"]["post"]["responses"]["201"]["headers"]


def test_the_schema_follows_the_configured_limits(client: Client, chat_settings) -> None:
    chat_settings(MAX_TEXT_LENGTH=200, MAX_TIMEOUT=3600)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    body = schema["components"]["schemas"]["MessageCreateRequest"]["properties"]
    assert body["text"]["maxLength"] == 200
    assert body["timeout"]["oneOf"][0]["maximum"] == 3600


def test_the_docs_page_uses_no_cdn(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page
    assert all(source.startswith("/") for source in sources), sources
    # The start-up script is a file of its own, which names the schema.
    script = next(source for source in sources if "script" in source.partition("?")[2])
    assert "/api/schema/" in client.get(html.unescape(script)).content.decode()


def test_the_docs_page_assets_are_in_the_static_files() -> None:
    from django.contrib.staticfiles import finders

    for asset in ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", "restapi/app.js", "restapi/app.css"):
        assert finders.find(asset), asset


@pytest.mark.parametrize("path", ["/", "/chat/1", "/chats/ann"])
def test_an_unknown_api_version_is_refused_with_406(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT="application/json; version=2")
    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "Unknown API version in the Accept header; this service speaks version 1 "
        "(for example Accept: application/json; version=1)."
    }


def test_an_unknown_version_changes_nothing(client: Client) -> None:
    from restapi.models import Message

    response = client.post(
        "/chat",
        '{"username": "ann", "text": "hi"}',
        content_type="application/json",
        HTTP_ACCEPT="application/json; version=9",
    )
    assert response.status_code == 406
    assert not Message.objects.exists()


def test_version_1_is_the_default_and_can_be_named(client: Client) -> None:
    named = client.post(
        "/chat",
        '{"username": "ann", "text": "hi"}',
        content_type="application/json",
        HTTP_ACCEPT="application/json; version=1",
    )
    unnamed = client.post("/chat", '{"username": "ann", "text": "hi"}', content_type="application/json")
    assert named.status_code == unnamed.status_code == 201
    assert named.json()["id"] != unnamed.json()["id"]
    assert Message.objects.filter(pk__in=[named.json()["id"], unnamed.json()["id"]]).count() == 2


def test_collectstatic_gathers_the_page_and_docs_assets(settings, tmp_path) -> None:
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    for asset in ("restapi/app.js", "restapi/app.css", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"):
        assert (settings.STATIC_ROOT / asset).is_file(), asset


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_service_serves_its_collected_static_files_without_nginx(tmp_path) -> None:
    import subprocess
    import sys
    import urllib.request

    from tests.support.processes import PROJECT_DIR, running_service

    static_root = tmp_path / "static"
    env = {"STATIC_ROOT": str(static_root)}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=PROJECT_DIR,
        env={**os.environ, **env, "DATA_DIR": str(tmp_path / "data")},
        check=True,
    )
    with (
        running_service(tmp_path, workers=1, env=env) as service,
        urllib.request.urlopen(f"{service.url}/static/restapi/app.css", timeout=10) as response,
    ):
        served = response.read()
        content_type = response.headers["Content-Type"]

    assert served == (PROJECT_DIR / "restapi/static/restapi/app.css").read_bytes()
    assert content_type.startswith("text/css")
