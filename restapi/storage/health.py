"""Probes of the stores for the readiness check: cheap, and never raising."""

from __future__ import annotations

import logging

from django.db import DatabaseError

from restapi.storage.hot import hot_store
from restapi.storage.redis_client import Attempt
from restapi.storage.sql import run

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    """Whether the database answers a trivial query."""
    try:
        run("SELECT 1")
    except DatabaseError as exc:
        logger.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


def hot_store_configured() -> bool:
    return hot_store().available


def ping_hot_store() -> Attempt[bool]:
    """The hot store's answer to a ping; its value is True only if Redis answered."""
    return hot_store().ping()
