"""The statements of the retention purge: a cutoff on the database clock, and bounded deletes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from restapi.models import Message
from restapi.storage.sql import as_datetime, dialect, run


def retention_cutoff(retention_days: int) -> datetime:
    """``retention_days`` days before now, on the database clock that decides every expiry."""
    ((cutoff,),) = run(f"SELECT {dialect().now_minus_days}", [retention_days])
    return as_datetime(cutoff)


@dataclass(frozen=True, slots=True)
class DeletedBatch:
    deleted: int
    # Of those, messages that expired without ever being collected.
    unread: int


def delete_expired_batch(*, cutoff: datetime, batch_size: int) -> DeletedBatch:
    """Delete up to ``batch_size`` of the oldest messages that expired before ``cutoff``."""
    oldest = Message.objects.filter(expiration_date__lt=cutoff).order_by("expiration_date").values("id")
    batch = Message.objects.filter(id__in=oldest[:batch_size])
    # Rows this old can no longer be collected, so the count stays true until
    # the delete below (barring a second purge running at the same moment).
    unread = batch.filter(collected_at__isnull=True).count()
    # One statement in autocommit mode: its own short transaction.
    deleted, _ = batch.delete()
    return DeletedBatch(deleted, unread)
