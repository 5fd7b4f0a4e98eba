"""
The OpenAPI schema against the running service.

Schemathesis reads /api/schema/ from the service under gunicorn and sends it
the schema's examples, boundary values of every rule (the coverage phase) and
generated requests, valid and invalid. Each answer is checked against the
schema: status codes, headers, content types and bodies; valid input accepted,
invalid input refused with a 4xx, never a 5xx. A change to the code that the
schema does not follow, or the other way round, fails here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess, running_service

# Transactional: the service's own connections see the test database, which is flushed after each test.
pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Generated requests per operation on top of the examples and boundary values: a few seconds in all.
EXAMPLES = 50
# Fixed, so that a failure found in CI is found again by the same command on a laptop.
SEED = 1
OPERATIONS = {
    ("GET", "/"),
    ("POST", "/chat"),
    ("GET", "/chat/{message_id}"),
    ("GET", "/chats/{username}"),
    ("POST", "/chats/{username}/leases"),
    ("DELETE", "/chats/{username}/leases/{lease}"),
    ("POST", "/inboxes"),
    ("POST", "/inboxes/{username}/token"),
    ("DELETE", "/inboxes/{username}"),
}


@pytest.fixture(scope="module")
def service(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One service for the module, on the test database."""
    # A rate no test reaches, so that every valid message is really stored.
    # Waits of at most a second: generated requests that wait for mail would otherwise take a minute each.
    env = {"CHAT_THROTTLE_RATE": "1000000/min", "CHAT_MAX_WAIT": "1"}
    with running_service(tmp_path_factory.mktemp("service"), env=env) as service:
        yield service


def test_the_schema_describes_every_endpoint_and_nothing_else(service: ServiceProcess) -> None:
    with urllib.request.urlopen(f"{service.url}/api/schema/?format=json") as response:
        schema = json.load(response)
    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert operations == OPERATIONS


def test_the_schema_declares_the_bearer_scheme_on_the_operations_that_take_a_token(service: ServiceProcess) -> None:
    with urllib.request.urlopen(f"{service.url}/api/schema/?format=json") as response:
        schema = json.load(response)
    assert schema["components"]["securitySchemes"]["inboxToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["inboxToken"]["description"],
    }
    security = {
        (method.upper(), path): operation.get("security")
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    # Optional where open inboxes need none, required where only a claim's holder may act.
    assert security[("GET", "/chats/{username}")] == [{"inboxToken": []}, {}]
    assert security[("GET", "/chat/{message_id}")] == [{"inboxToken": []}, {}]
    assert security[("POST", "/inboxes/{username}/token")] == [{"inboxToken": []}]
    assert security[("DELETE", "/inboxes/{username}")] == [{"inboxToken": []}]
    assert {"inboxToken": []} not in (security[("POST", "/inboxes")] or [])
    assert {"inboxToken": []} not in (security[("POST", "/chat")] or [])


def test_the_service_answers_as_its_schema_says(service: ServiceProcess, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{service.url}/api/schema/",
            # Stateful testing is left out: exactly-once collection has tests of its own.
            "--phases=examples,coverage,fuzzing",
            "--checks=all",
            f"--max-examples={EXAMPLES}",
            f"--seed={SEED}",
            "--request-timeout=10",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    # Every operation was exercised, not skipped.
    assert re.search(rf"^\s*Tested: {len(OPERATIONS)}$", result.stdout, re.MULTILINE), result.stdout[-4000:]
