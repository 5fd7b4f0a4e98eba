"""
Where messages are kept.

Every SQL statement and every Redis call of the service lives in this package,
one module per concern. The database (``storage.messages``) is the system of
record and is always there; the hot store (``storage.hot``) is an optional
accelerator for reads by id. Both speak in :class:`StoredMessage`, so the code
above them does not know which one answered. Storage reports what happened and
counts nothing: its callers keep the metrics.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    username: str
    # The text as sent; None while it is only held sealed (``restapi.sealing``).
    text: str | None
    expiration_date: datetime
    sealed_text: bytes | None = None
    # Known where the order of delivery is decided (collects and leases).
    created_at: datetime | None = None
