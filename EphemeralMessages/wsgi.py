"""WSGI entry point, used by gunicorn: ``gunicorn EphemeralMessages.wsgi``."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")

application = get_wsgi_application()

# Built before the first request (in gunicorn's master when the app is preloaded,
# so every worker starts with it), not by whichever requests arrive first.
from restapi.schema_view import schema_document  # noqa: E402

schema_document(settings.REST_FRAMEWORK["DEFAULT_VERSION"])
