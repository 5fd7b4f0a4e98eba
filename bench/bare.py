"""
The reference: a bare Django view returning a small JSON object.

It is served exactly as the service is (same gunicorn configuration), so the
ratio of the service's throughput to this one is the share of the framework's
own ceiling the service reaches. Settings, view and URLs live in this one
module: ``DJANGO_SETTINGS_MODULE=bench.bare gunicorn 'django.core.wsgi:get_wsgi_application()'``.
It uses Django's default middleware, as a new project has it.
"""

import os

from django.http import HttpRequest, JsonResponse
from django.urls import path

DEBUG = False
SECRET_KEY = os.environ["SECRET_KEY"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = __name__
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "world"})


urlpatterns = [path("", hello)]
