"""
System checks of the deployment, run by ``manage.py migrate`` (so at every
upgrade) and by ``manage.py check --database default``.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError

from restapi.storage.server_settings import message_table_autovacuumed


@register(Tags.database)
def autovacuum_is_on(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not databases or "default" not in databases:
        return []
    try:
        autovacuumed = message_table_autovacuumed()
    except DatabaseError:
        # An unreachable database is reported by the checks and commands that need it.
        return []
    if autovacuumed is False:
        return [
            Warning(
                "PostgreSQL's autovacuum is off for the message table: collected and purged "
                "rows are never reclaimed and the table grows without bound.",
                hint="Set autovacuum = on in postgresql.conf, and "
                "ALTER TABLE <table> RESET (autovacuum_enabled) for restapi_message or each of its "
                "partitions that has it set; see docs/OPERATIONS.md.",
                id="restapi.W001",
            )
        ]
    return []
