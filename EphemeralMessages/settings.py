"""
Django settings for the Ephemeral Messaging Service.

Every value that varies between deployments comes from the environment through
``EphemeralMessages.config``; this module only arranges it for Django.
"""

from csp.constants import NONE, SELF

from EphemeralMessages import config

CONFIG = config.load()

BASE_DIR = config.BASE_DIR
DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key
ALLOWED_HOSTS = CONFIG.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "restapi",
]

MIDDLEWARE = [
    # Outermost, so it times the whole request and sees the status actually sent.
    "restapi.metrics.MetricsMiddleware",
    "restapi.middleware.RequestIdMiddleware",
    "restapi.middleware.BodySizeLimitMiddleware",
    "restapi.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "restapi.content_security_policy.ContentSecurityPolicyMiddleware",
    # Serves collected static files when no nginx is in front (the quick start, a bare gunicorn).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that a request is waited on only once every other check has passed.
    "restapi.longpoll.LongPollMiddleware",
]

# The admin's notices live in the session: the default storage would sign a
# cookie on every request, API calls included.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "EphemeralMessages.urls"
WSGI_APPLICATION = "EphemeralMessages.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = CONFIG.static_root

# Paths are matched with and without a trailing slash by the URL patterns themselves.
APPEND_SLASH = False

# Bodies larger than this are refused with 413 before anything reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.max_body_bytes

# Pages may run and style themselves only with the service's own files: an
# injected <script>, inline event handler or <style> does not run. Swagger UI's
# icons are data: images; nothing is framed, posted elsewhere or loaded as a plugin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# TLS=1: clients reach the service over HTTPS only, TLS ending at nginx, which
# sets X-Forwarded-Proto (and overwrites any value a client sent).
if CONFIG.tls:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Probes (load balancers, this host's monitoring) ask by address over plain
    # HTTP; a redirect would read as a failure. They carry no secret.
    SECURE_REDIRECT_EXEMPT = [r"^(health|ready|metrics)/?$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = CONFIG.hsts_seconds
    SECURE_HSTS_INCLUDE_SUBDOMAINS = CONFIG.hsts_include_subdomains
    SECURE_HSTS_PRELOAD = CONFIG.hsts_preload
    if not CONFIG.hsts_preload:
        # Joining the browsers' preload list is a separate, hard-to-undo choice
        # (HSTS_PRELOAD=1), not a gap for `check --deploy` to report.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["restapi.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "restapi.negotiation.ContentNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "restapi.exceptions.json_exception_handler",
    # A client names the contract it speaks in the Accept header: application/json; version=1.
    "DEFAULT_VERSIONING_CLASS": "restapi.versioning.AcceptHeaderVersioning",
    "DEFAULT_VERSION": "1",
    "ALLOWED_VERSIONS": ["1"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI schema at /api/schema/ and its documentation pages, with no CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Ephemeral Messaging Service",
    "DESCRIPTION": (
        "Short-lived text messages addressed to a username. Collecting an inbox hands each live "
        "message out once and expires it; expired messages stay readable by id until retention purges them."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["restapi.schema.without_trailing_slash"],
}

# Each gunicorn worker's metrics live in files in this folder, which /metrics adds
# up; prometheus-client reads the variable itself (config.py checks it first).
PROMETHEUS_MULTIPROC_DIR = CONFIG.metrics_dir

# The rules of the contract, read by restapi; see docs/DESIGN.md.
CHAT = {
    "DEFAULT_TIMEOUT": CONFIG.default_timeout,
    "MAX_TIMEOUT": CONFIG.max_timeout,
    "MAX_TEXT_LENGTH": CONFIG.max_text_length,
    "MAX_COLLECT": CONFIG.max_collect,
    "MAX_WAIT": CONFIG.max_wait,
    "THROTTLE_RATE": CONFIG.throttle_rate,
    "READ_THROTTLE_RATE": CONFIG.read_throttle_rate,
    # (key id, key) pairs, the first sealing new texts; None keeps texts as sent.
    "ENCRYPTION_KEYS": CONFIG.encryption_keys,
    "TRUSTED_PROXIES": CONFIG.trusted_proxies,
    "RETENTION_DAYS": CONFIG.retention_days,
    "REDIS_URL": CONFIG.redis_url,
    "REDIS_CLUSTER": CONFIG.redis_cluster,
    "REDIS_TIMEOUT": CONFIG.redis_timeout,
}

if CONFIG.log_rotation == "size":
    LOG_FILE_ROTATION = {
        "class": "logging.handlers.RotatingFileHandler",
        "maxBytes": 10 * 1024 * 1024,
        "backupCount": 5,
    }
else:
    # A process that rotates the file by size leaves every other worker writing to
    # the renamed file, so under several workers rotation is left to logrotate
    # (deploy/logrotate/) and each process reopens the file once it has been moved.
    LOG_FILE_ROTATION = {"class": "logging.handlers.WatchedFileHandler"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "restapi.log.RequestIdFilter"},
        "client_error": {"()": "restapi.log.ClientErrorFilter"},
    },
    "formatters": {
        "standard": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        },
        "json": {"()": "restapi.log.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if CONFIG.log_format == "json" else "standard",
        },
        "file": {
            **LOG_FILE_ROTATION,
            "filename": str(CONFIG.log_file),
            "encoding": "utf-8",
            "filters": ["request_id"],
            "formatter": "json" if CONFIG.log_format == "json" else "standard",
        },
    },
    "root": {"handlers": ["console", "file"], "level": CONFIG.log_level},
    "loggers": {
        "django": {"level": CONFIG.log_level},
        # SQL statements are logged only at DEBUG; connection failures always.
        "django.db.backends": {"level": CONFIG.log_level},
        "restapi": {"level": CONFIG.log_level},
        # A Host the service does not serve is a client's mistake: a WARNING, not an ERROR with a traceback.
        "django.security.DisallowedHost": {"filters": ["client_error"]},
    },
}

if CONFIG.sentry_dsn:
    # Imported only when used: a deployment without Sentry never loads the SDK.
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=CONFIG.sentry_dsn,
        environment=CONFIG.sentry_environment,
        integrations=[DjangoIntegration()],
        traces_sample_rate=CONFIG.sentry_traces_sample_rate,
        # Message texts and client addresses stay out of error reports.
        send_default_pii=False,
        max_request_body_size="never",
    )
