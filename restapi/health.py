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

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from restapi.exceptions import DATABASE_RETRY_AFTER_SECONDS
from restapi.metrics import count_hot_store_call
from restapi.storage.health import database_answers, hot_store_configured, ping_hot_store


def _no_store(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    return _no_store(JsonResponse({"status": "ok"}))


def _hot_store_state() -> str:
    if not hot_store_configured():
        return "disabled"
    ping = ping_hot_store()
    count_hot_store_call("ping", ping.outcome)
    return "ok" if ping.value else "unavailable"


@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    database = "ok" if database_answers() else "unavailable"
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
