"""The statements that re-seal stored texts: a page of texts by id, and their replacement."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from restapi.models import Message
from restapi.storage.sql import run

TABLE = Message._meta.db_table

# Pages follow the primary key, so each one is an index range however large the table.
_PAGE = f"SELECT id, text, sealed_text FROM {TABLE} WHERE id > %s ORDER BY id LIMIT %s"  # noqa: S608
_REPLACE = f"UPDATE {TABLE} SET text = NULL, sealed_text = %s WHERE id = %s"  # noqa: S608


@dataclass(frozen=True, slots=True)
class StoredText:
    message_id: int
    text: str | None
    sealed_text: bytes | None


def page_after(message_id: int, size: int) -> list[StoredText]:
    """Up to ``size`` stored texts of the messages with ids above ``message_id``, by id."""
    return [
        StoredText(row_id, text, None if sealed is None else bytes(sealed))
        for row_id, text, sealed in run(_PAGE, [message_id, size])
    ]


def replace_sealed(sealed_texts: dict[int, bytes]) -> None:
    """Keep each message's text only as the given sealed text, all in one short transaction."""
    with transaction.atomic():
        for message_id, sealed in sealed_texts.items():
            run(_REPLACE, [sealed, message_id])
