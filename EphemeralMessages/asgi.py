"""
ASGI entry point: ``gunicorn -c deploy/gunicorn.conf.py`` with
``GUNICORN_WORKER_CLASS=asgi``, the server that long-polls are routed to.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")
# Django runs each request of this server on a thread made for it, so a
# database connection kept after the request would never be used again, and
# open connections would pile up until PostgreSQL refuses more: close each one.
os.environ.setdefault("CHAT_CONN_MAX_AGE", "0")

django_application = get_asgi_application()

from restapi.longpoll import LongPollASGI  # noqa: E402 - needs the apps loaded above

application = LongPollASGI(django_application)
