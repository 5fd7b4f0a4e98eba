"""
Retention: messages expired for longer than ``CHAT_RETENTION_DAYS`` are deleted for good.

The purge runs as many short statements, each deleting at most ``batch_size``
of the oldest expired rows found through the ``expiration_date`` index, each
in its own transaction. No statement holds locks for long, so the purge can
run while the service is busy, and an interrupted purge is simply resumed by
the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection

from restapi.metrics import MESSAGES_EXPIRED_UNREAD
from restapi.models import Message

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PurgeResult:
    deleted: int
    cutoff: datetime
    batches: int


_NOW = {
    "postgresql": "SELECT now()",
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


def _database_now() -> datetime:
    """The database's clock, which decides expiry everywhere, so retention too."""
    with connection.cursor() as cursor:
        cursor.execute(_NOW[connection.vendor])
        (value,) = cursor.fetchone()
    if isinstance(value, str):
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def purge_expired_messages(
    *,
    retention_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Delete every message whose expiration_date is more than ``retention_days`` days ago."""
    cutoff = _database_now() - timedelta(days=retention_days)
    deleted = batches = 0
    while True:
        oldest = Message.objects.filter(expiration_date__lt=cutoff).order_by("expiration_date").values("id")
        batch = Message.objects.filter(id__in=oldest[:batch_size])
        # Rows this old can no longer be collected, so the count stays true until
        # the delete below (barring a second purge running at the same moment).
        unread = batch.filter(collected_at__isnull=True).count()
        # One statement in autocommit mode: its own short transaction.
        count, _ = batch.delete()
        MESSAGES_EXPIRED_UNREAD.inc(unread)
        deleted += count
        batches += 1
        if on_batch is not None:
            on_batch(count)
        if count < batch_size:
            break
        if pause:
            # Gives replication and other writers room between batches.
            time.sleep(pause)
    logger.info("retention purge: deleted %d messages expired before %s", deleted, cutoff.isoformat())
    return PurgeResult(deleted, cutoff, batches)
