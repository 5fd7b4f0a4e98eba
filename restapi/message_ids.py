"""
Message ids that cannot be counted.

An id is a random integer in 1..2**53-1, drawn from the operating system's
cryptographic source: knowing one id says nothing about any other, so reading
messages by counting is a search of a space of 9e15 ids for the few alive. The
upper bound is the largest integer a JavaScript number holds exactly, so that
a browser client never rounds an id into another message's.

Two draws meet with probability n/2**53 for a table of n rows (one in 900
million at ten million rows); the insert detects it and draws again.
"""

from __future__ import annotations

import secrets

MAX_MESSAGE_ID = 2**53 - 1

_source = secrets.SystemRandom()


def new_message_id() -> int:
    """A fresh random id in 1..MAX_MESSAGE_ID."""
    return _source.randint(1, MAX_MESSAGE_ID)
