"""
Random message ids, a column for sealed texts, and an index that reads an inbox oldest first.

Written to be run on a live table of any size: outside a transaction, so that
each step holds its lock only for itself. The ALTER TABLE steps change the
catalogue only (no rewrite, no scan) and wait at most ``lock_timeout`` for
their lock; the index is built with CREATE INDEX CONCURRENTLY, which lets
reads and writes go on. docs/OPERATIONS.md has the measured lock times.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models
from django.db.models import Q

import restapi.message_ids

# Long enough for a busy table's statements to finish, short enough that an
# ALTER waiting behind a long transaction fails instead of queueing every request.
LOCK_TIMEOUT = "5s"


def _on_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def limit_lock_waits(apps, schema_editor) -> None:
    if _on_postgresql(schema_editor):
        schema_editor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")


def drop_id_sequence(apps, schema_editor) -> None:
    # New ids are drawn by the application; without the identity no insert can
    # fall back to counting. (SQLite needs nothing: an explicit id is always used.)
    if _on_postgresql(schema_editor):
        schema_editor.execute('ALTER TABLE "restapi_message" ALTER COLUMN "id" DROP IDENTITY IF EXISTS')


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrentlyOnPostgreSQL(RemoveIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("restapi", "0005_message_leases"),
    ]

    operations = [
        migrations.RunPython(limit_lock_waits, migrations.RunPython.noop, elidable=True),
        migrations.AddField(
            model_name="message",
            name="sealed_text",
            field=models.BinaryField(editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="message",
            name="text",
            field=models.TextField(null=True),
        ),
        migrations.SeparateDatabaseAndState(
            # The column stays bigint; only where new values come from changes.
            database_operations=[migrations.RunPython(drop_id_sequence, migrations.RunPython.noop)],
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="id",
                    field=models.BigIntegerField(
                        default=restapi.message_ids.new_message_id, editable=False, primary_key=True, serialize=False
                    ),
                ),
            ],
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="message",
            index=models.Index(
                condition=Q(collected_at__isnull=True),
                fields=["username", "created_at", "id"],
                name="message_inbox_queue_idx",
            ),
        ),
        RemoveIndexConcurrentlyOnPostgreSQL(
            model_name="message",
            name="message_live_inbox_idx",
        ),
    ]
