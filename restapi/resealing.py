"""
Re-sealing: every stored text moved under the first key of ``CHAT_ENCRYPTION_KEYS``.

Texts kept as sent (from before encryption was turned on) are sealed; texts
sealed under an older key are opened and sealed again. The table is walked by
id in pages, each page rewritten in one short transaction, so the command runs
beside the service and an interrupted run is simply started again. Once it
reports no text left under an old key, that key can be removed from the list.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from restapi.sealing import Keyring, UnreadableText, sealed_key_id
from restapi.storage.sealed_texts import page_after, replace_sealed

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(slots=True)
class ResealResult:
    key_id: str
    resealed: int = 0
    already_current: int = 0
    batches: int = 0
    # Messages no configured key opens; they are left as they are.
    unreadable: list[int] = field(default_factory=list)


def reseal_messages(*, ring: Keyring, batch_size: int = DEFAULT_BATCH_SIZE, pause: float = 0.0) -> ResealResult:
    """Seal every stored text under ``ring``'s first key."""
    result = ResealResult(ring.current_key_id)
    last_id = 0
    while True:
        page = page_after(last_id, batch_size)
        if not page:
            break
        result.batches += 1
        last_id = page[-1].message_id
        updates: dict[int, bytes] = {}
        for stored in page:
            if stored.sealed_text is None:
                text = stored.text
            elif sealed_key_id(stored.sealed_text) == ring.current_key_id:
                result.already_current += 1
                continue
            else:
                try:
                    text = ring.open(stored.message_id, stored.sealed_text)
                except UnreadableText as exc:
                    logger.error("reseal: %s", exc)
                    result.unreadable.append(stored.message_id)
                    continue
            updates[stored.message_id] = ring.seal(stored.message_id, text)
        if updates:
            replace_sealed(updates)
            result.resealed += len(updates)
        if pause:
            time.sleep(pause)
    logger.info(
        "reseal: %d texts sealed under key %r, %d already were, %d unreadable",
        result.resealed,
        result.key_id,
        result.already_current,
        len(result.unreadable),
    )
    return result
