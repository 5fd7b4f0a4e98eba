"""
System programs that some tests drive for real: redis-server, the PostgreSQL
server binaries, nginx and chromium.

On a machine with only Python the tests that need one are skipped, naming the
package to install, so `make test` stays usable anywhere. CI sets
``CHAT_TESTS_REQUIRE_TOOLS=1``, which turns a missing program into a failure:
there every one of these tests must run.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ALL = os.environ.get("CHAT_TESTS_REQUIRE_TOOLS", "") == "1"


def missing(what: str, *, install: str) -> None:
    """Skip the test (fail it under CHAT_TESTS_REQUIRE_TOOLS=1) because ``what`` is not installed."""
    message = f"{what} is not installed ({install})"
    if REQUIRE_ALL:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
