"""
Usernames are compared in NFKC; the live messages stored under another spelling move to it.

Only live messages (not collected, not expired) are rewritten: they are the
ones a collect must still find. Settled messages keep the name as it was sent,
as their reads and the hot store's copies show it. The work goes name by name
through the partial index of uncollected messages, a batch of names at a time,
each update committed on its own, so a large table is never locked or
rewritten as a whole. A name whose normal form breaks the column's length, or
that holds characters the username rule now refuses, is left as it is: no
collect can name it, and its messages expire with their timeout.
"""

import unicodedata

from django.db import migrations
from django.db.models.functions import Now

BATCH = 1000
MAX_LENGTH = 150


def normalise_live_usernames(apps, schema_editor):
    Message = apps.get_model("restapi", "Message")
    live = Message.objects.filter(collected_at__isnull=True, expiration_date__gt=Now())
    last = ""
    while True:
        names = list(
            live.filter(username__gt=last).order_by("username").values_list("username", flat=True).distinct()[:BATCH]
        )
        if not names:
            return
        for name in names:
            normal = unicodedata.normalize("NFKC", name)
            if normal != name and len(normal) <= MAX_LENGTH:
                live.filter(username=name).update(username=normal)
        last = names[-1]


class Migration(migrations.Migration):
    # Each batch commits by itself, so the migration never holds the table's rows at once.
    atomic = False

    dependencies = [("restapi", "0002_throttle_window")]

    operations = [migrations.RunPython(normalise_live_usernames, migrations.RunPython.noop, elidable=True)]
