"""
The service's settings and middleware around a view that does nothing: what the
request path costs before any endpoint's own work.

``bench.middleware`` runs it with each middleware left out in turn
(``BENCH_WITHOUT``, dotted paths separated by commas), to price each one.
"""

import os

from django.http import HttpRequest, JsonResponse
from django.urls import path

from EphemeralMessages.settings import *  # noqa: F403 - the service's settings, as deployed
from EphemeralMessages.settings import MIDDLEWARE

ROOT_URLCONF = __name__
MIDDLEWARE = [name for name in MIDDLEWARE if name not in os.environ.get("BENCH_WITHOUT", "").split(",")]


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "world"})


urlpatterns = [path("", hello)]
