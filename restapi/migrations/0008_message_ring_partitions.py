"""
On PostgreSQL, the message table becomes a ring of 64 partitions by id, so
that the retention purge empties whole partitions instead of deleting rows
(restapi.storage.partitions; docs/SCALING.md, "Retention at scale").

A table cannot be turned into a partitioned one in place: the rows are copied.
One transaction does it. It first takes an EXCLUSIVE lock on the old table, so
reads by id go on while the copy and the index builds run, and writes (sends,
collects, leases) wait; then it swaps the tables, which takes the old table's
ACCESS EXCLUSIVE lock for a catalogue change only. docs/OPERATIONS.md gives the
measured times; on a big table, run it in a quiet hour.

SQLite keeps its one table (nothing to do there).
"""

from django.db import migrations, models

import restapi.message_ids
from restapi.storage import partitions

OLD = partitions.TABLE
NEW = f"{partitions.TABLE}_new"


def _rebuild(schema_editor, build) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    # Waits for the statements already running on the table, not for ever.
    schema_editor.execute("SET LOCAL lock_timeout = '10s'")
    schema_editor.execute(f"LOCK TABLE {OLD} IN EXCLUSIVE MODE")
    for statement in build(OLD, NEW):
        schema_editor.execute(statement)
    for statement in partitions.swap_statements(OLD, NEW):
        schema_editor.execute(statement)


def to_ring(apps, schema_editor) -> None:
    _rebuild(schema_editor, partitions.ring_statements)
    if schema_editor.connection.vendor == "postgresql":
        # Until the last of the copied messages that may still be collected has
        # expired, collects look in every slot (their ids are anywhere).
        schema_editor.execute(
            f"INSERT INTO {partitions.RING_TABLE} (id, legacy_live_until) "
            f"SELECT 1, max(expiration_date) FROM {OLD} WHERE collected_at IS NULL"
        )


def to_plain(apps, schema_editor) -> None:
    _rebuild(schema_editor, partitions.plain_statements)


class Migration(migrations.Migration):
    dependencies = [
        ("restapi", "0007_inbox"),
    ]

    operations = [
        migrations.CreateModel(
            name="MessageRing",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("legacy_live_until", models.DateTimeField(null=True)),
            ],
            options={
                "db_table": "restapi_message_ring",
            },
        ),
        migrations.AlterField(
            model_name="message",
            name="id",
            field=models.BigIntegerField(
                default=restapi.message_ids.new_message_id_of_today, editable=False, primary_key=True, serialize=False
            ),
        ),
        migrations.RunPython(to_ring, to_plain),
    ]
