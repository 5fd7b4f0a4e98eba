"""
Message ids that cannot be counted.

An id is a random integer in 1..2**53-1, drawn from the operating system's
cryptographic source: knowing one id says nothing about any other, so reading
messages by counting is a search of a space of 9e15 ids for the few alive. The
upper bound is the largest integer a JavaScript number holds exactly, so that
a browser client never rounds an id into another message's.

Two draws meet with probability n/2**53 for a table of n rows (one in 900
million at ten million rows); the insert detects it and draws again.

On PostgreSQL the message table is a ring of partitions by id
(``restapi.storage.partitions``), and an id also says which partition holds
its message: its top ``SLOT_BITS`` bits are the slot of the day the message
expires (the day number modulo ``RING_DAYS``), or ``LONG_SLOT`` for a message
that lives longer than the ring can wait for; the other ``RANDOM_BITS`` bits
are random. A slot then holds the messages that expire on one day, and is
emptied whole once that day is past retention. docs/SCALING.md ("Retention at
scale") weighs the six bits of randomness this gives up.
"""

from __future__ import annotations

import secrets
import time

MAX_MESSAGE_ID = 2**53 - 1
MAX_MESSAGE_ID_DIGITS = len(str(MAX_MESSAGE_ID))

SLOT_BITS = 6
RANDOM_BITS = 53 - SLOT_BITS
SLOTS = 2**SLOT_BITS
# Slots 0..RING_DAYS-1 take one day each, in turn; the last slot takes every
# message whose expiry is further ahead than the ring allows.
RING_DAYS = SLOTS - 1
LONG_SLOT = SLOTS - 1
SECONDS_PER_DAY = 86_400
# Days kept between the end of a slot's retention and its next use, for a purge
# that runs late and for application clocks that are a little off.
RING_MARGIN_DAYS = 7
# How many days ahead a message may expire and still go to its day's slot. Every
# collect looks in the slots of these days (and the day either side) and in
# LONG_SLOT, so the fewer the cheaper; messages that live longer are rare and go
# to LONG_SLOT, which the purge clears row by row.
RING_HORIZON_DAYS = 2
# The longest retention the ring takes: a day's slot must be past retention, and
# emptied, before the sends of the day that comes round to it RING_DAYS days
# later begin (RING_HORIZON_DAYS ahead of it), with RING_MARGIN_DAYS to spare.
# Beyond it every message would have to go to LONG_SLOT and the purge would be
# the slow row-by-row delete, so the service refuses a longer
# CHAT_RETENTION_DAYS at start-up instead (EphemeralMessages/config.py).
MAX_RETENTION_DAYS = RING_DAYS - RING_MARGIN_DAYS - RING_HORIZON_DAYS

_source = secrets.SystemRandom()


def new_message_id() -> int:
    """A fresh random id in 1..MAX_MESSAGE_ID."""
    return _source.randint(1, MAX_MESSAGE_ID)


def message_id_from_digits(digits: str) -> int:
    """
    The id that a path's digits name, leading zeros and all; 0, which names no
    message, when they hold more digits than any id has.

    Python refuses to convert more than 4,300 digits (a ValueError, so a 500
    for what is only a missing id), and converting fewer costs time that grows
    with their number; an id has at most ``MAX_MESSAGE_ID_DIGITS``.
    """
    significant = digits.lstrip("0")
    return int(significant) if 0 < len(significant) <= MAX_MESSAGE_ID_DIGITS else 0


def day_slot(day: int) -> int:
    """The slot of the ring that holds the messages expiring on ``day`` (days since 1970-01-01, UTC)."""
    return day % RING_DAYS


def ring_horizon_days(retention_days: int) -> int:
    """
    How many days ahead a message may expire and still go to its day's slot:
    RING_HORIZON_DAYS, for every retention up to MAX_RETENTION_DAYS.

    A slot is used again RING_DAYS days after its day, and the messages of the
    next use arrive up to the horizon before it; the slot must have been
    emptied by then, which it can be only ``retention_days`` after its day.
    A longer retention is refused, never quietly served by a shorter horizon
    or by sending every message to LONG_SLOT.
    """
    if not 0 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValueError(f"retention of {retention_days} days: the ring takes 0 to {MAX_RETENTION_DAYS}")
    return RING_HORIZON_DAYS


def slot_of(message_id: int) -> int:
    """The slot an id belongs to: its top SLOT_BITS bits."""
    return message_id >> RANDOM_BITS


def slot_bounds(slot: int) -> tuple[int, int]:
    """The ids of ``slot``: from the first (included) to the last (excluded)."""
    return slot << RANDOM_BITS, (slot + 1) << RANDOM_BITS


def new_slotted_message_id(*, expires_at: float, now: float, retention_days: int) -> int:
    """
    A fresh id for a message expiring at Unix time ``expires_at``: the slot of
    its expiry day, or LONG_SLOT past the ring's horizon, then RANDOM_BITS
    random bits (never all zero in slot 0, so the id is never 0).
    """
    day = int(expires_at // SECONDS_PER_DAY)
    within = day <= int(now // SECONDS_PER_DAY) + ring_horizon_days(retention_days)
    slot = day_slot(day) if within else LONG_SLOT
    low = _source.randrange(1 if slot == 0 else 0, 2**RANDOM_BITS)
    return (slot << RANDOM_BITS) | low


def new_message_id_of_today() -> int:
    """
    A fresh id in the slot of today, for a message made without a timeout in
    hand (through the ORM: the admin, tests). Collects look in today's slot
    until tomorrow is over; the purge empties the slot only once every row in
    it is past retention, whenever that is.
    """
    return new_slotted_message_id(expires_at=time.time(), now=time.time(), retention_days=0)
