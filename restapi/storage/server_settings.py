"""
Settings of the database server that the service relies on but does not set itself.

Every collect rewrites the rows it hands out and every purge deletes rows, so the
message table keeps producing dead row versions: PostgreSQL's autovacuum must be
on, both for the server and for the table (docs/OPERATIONS.md).
"""

from __future__ import annotations

from django.db import connection

from restapi.models import Message

# One statement: the server-wide switch, and the storage parameter of the table
# or, on PostgreSQL's ring of partitions, of each partition (autovacuum works on
# partitions, and the parameter can turn it off for one of them alone). No row:
# no table yet.
_AUTOVACUUM = """
SELECT current_setting('autovacuum')::boolean
       AND NOT EXISTS (
           SELECT 1 FROM pg_partition_tree(t.oid) tree JOIN pg_class c ON c.oid = tree.relid
           WHERE tree.isleaf AND 'autovacuum_enabled=false' = ANY (c.reloptions)
       )
FROM pg_class t
WHERE t.oid = to_regclass(%s)
"""


def message_table_autovacuumed() -> bool | None:
    """Whether autovacuum looks after the message table; None where that does not apply (SQLite, no table yet)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_AUTOVACUUM, [Message._meta.db_table])
        row = cursor.fetchone()
    return None if row is None else bool(row[0])
