"""
Prometheus metrics: what the service counts, and the ``/metrics`` page that reports it.

Metrics are defined here and only updated elsewhere: by :class:`MetricsMiddleware`
for every request, by the services and selectors for messages and hot-store calls,
by the throttle and the exception handler for throttled requests, by the collect
service for collects abandoned by their client, and by the retention purge for
messages that expired unread. Storage and views stay free of instrumentation:
whoever calls a store counts what it reported.

Under gunicorn each worker is a separate process. With ``PROMETHEUS_MULTIPROC_DIR``
set (deploy/gunicorn.conf.py and the systemd unit set it), prometheus-client keeps
each process's values in files in that folder and ``/metrics`` adds them up, so a
scrape sees the whole service whichever worker answers it. Without it (tests,
``runserver``) the values are the current process's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "chat_http_requests_total",
    "HTTP requests answered, by route name, method and status code.",
    ["endpoint", "method", "status"],
)
REQUEST_LATENCY = Histogram(
    "chat_http_request_duration_seconds",
    "Time from receiving a request to returning its response, by route name, method and status code.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MESSAGES_CREATED = Counter("chat_messages_created_total", "Messages committed to the database.")
MESSAGES_COLLECTED = Counter("chat_messages_collected_total", "Messages handed out (and expired) by a collect.")
COLLECTS_ABANDONED = Counter(
    "chat_collects_abandoned",
    "Collects not run because the client had closed its connection before they started.",
)
MESSAGES_LEASED = Counter(
    "chat_messages_leased_total",
    "Messages handed out under a lease (a message whose lease ended unacknowledged counts again when leased again).",
)
MESSAGES_ACKNOWLEDGED = Counter(
    "chat_messages_acknowledged_total", "Leased messages collected by the acknowledgement of their lease."
)
WAKE_UPS_NOT_PUBLISHED = Counter(
    "chat_wake_ups_not_published_total",
    "Sends whose wake-up could not be published to Redis; waiters found those messages by polling.",
)
MESSAGES_EXPIRED_UNREAD = Counter(
    "chat_messages_expired_unread_total",
    "Messages that expired without being collected, as the retention purge removes them: "
    "count is counted for rows deleted one by one, estimated for partitions emptied whole.",
    ["count"],
)
RETENTION_LAST_SUCCESS = Gauge(
    "chat_retention_last_success_timestamp_seconds",
    "Unix time at which the retention purge last finished without error.",
    multiprocess_mode="mostrecent",
)
HOT_STORE_LOOKUPS = Counter(
    "chat_hot_store_lookups_total",
    "Reads by id that the hot store answered: result is hit or miss.",
    ["result"],
)
HOT_STORE_ERRORS = Counter(
    "chat_hot_store_errors_total",
    "Hot-store operations that failed (the database answered instead), by operation.",
    ["operation"],
)
HOT_STORE_SKIPPED = Counter(
    "chat_hot_store_skipped_total",
    "Hot-store operations not attempted because a recent failure suspended the store, by operation.",
    ["operation"],
)
THROTTLE_REJECTIONS = Counter(
    "chat_throttle_rejections_total",
    "Requests refused with 429 because the client was over its rate.",
)
THROTTLE_FAILED_OPEN = Counter(
    "chat_throttle_failed_open_total",
    "POST /chat requests let through unthrottled because the Redis throttle counter was unavailable.",
)


def count_hot_store_call(operation: str, outcome: str) -> None:
    """Counts a hot-store call that failed, or was skipped because a recent failure suspended the store."""
    if outcome == "failed":
        HOT_STORE_ERRORS.labels(operation).inc()
    elif outcome == "skipped":
        HOT_STORE_SKIPPED.labels(operation).inc()


# Requests that match no route share one label, so scanners probing random paths
# cannot create a time series per path.
UNMATCHED_ENDPOINT = "unmatched"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def endpoint_name(request: HttpRequest) -> str:
    """The route name a request was (or would have been) dispatched to."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        # Answered before URL resolution (for example a 413 from the body limit).
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED_ENDPOINT
    return match.view_name or UNMATCHED_ENDPOINT


class MetricsMiddleware:
    """Counts every request and times it; the outermost middleware, so it sees the final status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _KNOWN_METHODS else "other"
        labels = (endpoint_name(request), method, str(response.status_code))
        REQUESTS.labels(*labels).inc()
        REQUEST_LATENCY.labels(*labels).observe(elapsed)
        return response


def _registry() -> CollectorRegistry:
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of every metric, summed over all worker processes."""
    response = HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
