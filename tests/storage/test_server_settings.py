"""The database server's settings the service depends on, and the system check that reports them."""

from __future__ import annotations

import pytest
from django.core import checks
from django.db import connection

from restapi.storage.server_settings import message_table_autovacuumed

pytestmark = pytest.mark.django_db


def autovacuum_warnings() -> list[checks.CheckMessage]:
    found = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    return [message for message in found if message.id == "restapi.W001"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="autovacuum is PostgreSQL's")
def test_a_message_table_without_autovacuum_is_reported() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        server_on = cursor.fetchone()[0] == "on"
    # The server's own switch, whichever way this server is set.
    assert message_table_autovacuumed() is server_on
    assert len(autovacuum_warnings()) == (0 if server_on else 1)
    # A storage parameter turns it off for one table alone: here one partition of the ring.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE restapi_message_s07 SET (autovacuum_enabled = false)")
    assert message_table_autovacuumed() is False
    [warning] = autovacuum_warnings()
    assert "autovacuum is off" in warning.msg


@pytest.mark.skipif(connection.vendor == "postgresql", reason="for databases without autovacuum")
def test_nothing_to_report_without_postgresql() -> None:
    assert message_table_autovacuumed() is None
    assert autovacuum_warnings() == []
