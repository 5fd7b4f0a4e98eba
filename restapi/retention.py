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
from datetime import datetime

from restapi.metrics import MESSAGES_EXPIRED_UNREAD
from restapi.storage.retention import delete_expired_batch, retention_cutoff

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PurgeResult:
    deleted: int
    cutoff: datetime
    batches: int


def purge_expired_messages(
    *,
    retention_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Delete every message whose expiration_date is more than ``retention_days`` days ago."""
    cutoff = retention_cutoff(retention_days)
    deleted = batches = 0
    while True:
        batch = delete_expired_batch(cutoff=cutoff, batch_size=batch_size)
        MESSAGES_EXPIRED_UNREAD.inc(batch.unread)
        deleted += batch.deleted
        batches += 1
        if on_batch is not None:
            on_batch(batch.deleted)
        if batch.deleted < batch_size:
            break
        if pause:
            # Gives replication and other writers room between batches.
            time.sleep(pause)
    logger.info("retention purge: deleted %d messages expired before %s", deleted, cutoff.isoformat())
    return PurgeResult(deleted, cutoff, batches)
