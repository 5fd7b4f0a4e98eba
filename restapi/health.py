"""
Health checks for load balancers, orchestrators and people.

``/health`` says the process is up and answering; it touches nothing else, so a
slow database never makes a balancer kill healthy workers. ``/ready`` says
whether the service can do its job: the database must answer a trivial query
(503 otherwise), while a hot store that does not answer only makes the service
"degraded", because every endpoint still answers from the database.

Both are plain Django views, outside DRF, so no throttle ever applies to them.
Neither reveals a host name, URL or error text.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from restapi.exceptions import DATABASE_RETRY_AFTER_SECONDS
from restapi.storage.hot import hot_store

logger = logging.getLogger(__name__)


def _no_store(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    return _no_store(JsonResponse({"status": "ok"}))


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


def _hot_store_state() -> str:
    store = hot_store()
    if not store.available:
        return "disabled"
    return "ok" if store.ping() else "unavailable"


@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    database = "ok" if _database_answers() else "unavailable"
    hot = _hot_store_state()
    if database != "ok":
        status, code = "unavailable", 503
    elif hot == "unavailable":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    response = JsonResponse({"status": status, "checks": {"database": database, "hot_store": hot}}, status=code)
    if code == 503:
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return _no_store(response)
