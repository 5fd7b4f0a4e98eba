from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from restapi.metrics import RETENTION_LAST_SUCCESS
from restapi.retention import DEFAULT_BATCH_SIZE, purge_expired_messages


class Command(BaseCommand):
    help = (
        "Delete messages that expired more than CHAT_RETENTION_DAYS days ago, "
        "emptying whole partitions where it can (PostgreSQL) and deleting the rest in short batches "
        "that never lock the table for long. Safe to run while the service runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"rows deleted per statement and transaction (default {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--pause",
            type=float,
            default=0.0,
            help="seconds to wait between batches, to spread the load (default 0)",
        )

    def handle(self, *args: Any, batch_size: int, pause: float, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if pause < 0:
            raise CommandError("--pause must not be negative.")
        retention_days = settings.CHAT["RETENTION_DAYS"]
        result = purge_expired_messages(retention_days=retention_days, batch_size=batch_size, pause=pause)
        RETENTION_LAST_SUCCESS.set_to_current_time()
        self.stdout.write(
            f"Deleted {result.deleted} messages expired before {result.cutoff.isoformat()} "
            f"(retention {retention_days} days, {result.batches} batches); "
            f"{len(result.emptied_slots)} partitions emptied whole, holding about {result.emptied_estimate} "
            "messages (estimated from a sample of each partition, not counted)."
        )
