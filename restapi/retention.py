"""
Retention: messages expired for longer than ``CHAT_RETENTION_DAYS`` are deleted for good.

On PostgreSQL the message table is a ring of partitions, one slot per day of
expiry (``restapi.storage.partitions``): the purge first empties, with one
TRUNCATE each, the slots whose every row is past retention, which costs the
same for ten rows as for a billion; their rows are estimated from a sample,
not counted, since counting them would cost as much as a billion rows. Whatever is left (messages that live
longer than the ring's horizon, rows whose slot cannot be emptied yet, and
every row on SQLite) goes as before: as many short statements, each deleting
at most ``batch_size`` of the oldest expired rows found through the
``expiration_date`` index, each in its own transaction. No statement holds
locks for long, so the purge can run while the service is busy, and an
interrupted purge is simply resumed by the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from restapi.metrics import MESSAGES_EXPIRED_UNREAD
from restapi.storage import partitions
from restapi.storage.retention import delete_expired_batch, retention_cutoff

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PurgeResult:
    # Rows deleted in batches, counted.
    deleted: int
    cutoff: datetime
    batches: int
    # Slots of the ring emptied whole (PostgreSQL), and an estimate (never a
    # count: ``partitions.estimate_rows``) of the rows they held.
    emptied_slots: tuple[int, ...] = ()
    emptied_estimate: int = 0


def purge_expired_messages(
    *,
    retention_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Delete every message whose expiration_date is more than ``retention_days`` days ago."""
    cutoff = retention_cutoff(retention_days)
    emptied = empty_whole_slots(cutoff=cutoff, retention_days=retention_days)
    emptied_estimate = sum(slot.estimated for slot in emptied)
    deleted = 0
    batches = 0
    while True:
        batch = delete_expired_batch(cutoff=cutoff, batch_size=batch_size)
        MESSAGES_EXPIRED_UNREAD.labels(count="counted").inc(batch.unread)
        deleted += batch.deleted
        batches += 1
        if on_batch is not None:
            on_batch(batch.deleted)
        if batch.deleted < batch_size:
            break
        if pause:
            # Gives replication and other writers room between batches.
            time.sleep(pause)
    logger.info(
        "retention purge: deleted %d messages expired before %s in %d batches; "
        "emptied %d slots whole, holding about %d messages (estimated from a sample, not counted)",
        deleted,
        cutoff.isoformat(),
        batches,
        len(emptied),
        emptied_estimate,
    )
    return PurgeResult(deleted, cutoff, batches, tuple(slot.slot for slot in emptied), emptied_estimate)


def empty_whole_slots(*, cutoff: datetime, retention_days: int) -> list[partitions.EmptiedSlot]:
    """Truncate every slot of the ring that no send is writing to and whose rows are all past ``cutoff``."""
    if not partitions.is_partitioned():
        return []
    in_use = partitions.slots_in_use(now=partitions.database_now(), retention_days=retention_days)
    emptied = []
    for slot in range(partitions.SLOTS):
        if slot in in_use or not partitions.has_rows(slot):
            continue
        result = partitions.empty_slot(slot, cutoff=cutoff)
        if result is None:
            # A row not yet past retention (or a lock not had): its expired
            # rows go in the batches below, the rest at a later purge.
            continue
        MESSAGES_EXPIRED_UNREAD.labels(count="estimated").inc(result.estimated_unread)
        emptied.append(result)
    return emptied
