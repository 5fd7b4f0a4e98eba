from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from restapi.resealing import DEFAULT_BATCH_SIZE, reseal_messages
from restapi.sealing import keyring


class Command(BaseCommand):
    help = (
        "Seal every stored text under the first key of CHAT_ENCRYPTION_KEYS: texts kept as sent and texts "
        "sealed under older keys. In short batches, safe to run while the service runs; run it after putting "
        "a new key first, and remove an old key only once this reports nothing unreadable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"messages read and rewritten per transaction (default {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--pause", type=float, default=0.0, help="seconds to wait between batches, to spread the load (default 0)"
        )

    def handle(self, *args: Any, batch_size: int, pause: float, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if pause < 0:
            raise CommandError("--pause must not be negative.")
        ring = keyring()
        if ring is None:
            raise CommandError("CHAT_ENCRYPTION_KEYS is not set: there is no key to seal texts under.")
        result = reseal_messages(ring=ring, batch_size=batch_size, pause=pause)
        self.stdout.write(
            f"Resealed {result.resealed} messages under key {result.key_id!r} "
            f"({result.already_current} already were; {result.batches} batches)."
        )
        if result.unreadable:
            shown = ", ".join(map(str, result.unreadable[:20]))
            raise CommandError(
                f"{len(result.unreadable)} messages are sealed under a key that is not configured "
                f"(ids {shown}{', ...' if len(result.unreadable) > 20 else ''}); they were left as they are."
            )
