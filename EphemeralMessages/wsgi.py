"""WSGI entry point, used by gunicorn: ``gunicorn EphemeralMessages.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")

django_application = get_wsgi_application()

from restapi.middleware import ChunkedBodyReader  # noqa: E402

application = ChunkedBodyReader(django_application)
