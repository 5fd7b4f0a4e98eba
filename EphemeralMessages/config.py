"""
Configuration read from the environment, parsed and validated in one place.

``settings.py`` calls :func:`load` once at start-up and deploy/gunicorn.conf.py
calls :func:`load_gunicorn`; nothing else in the service reads the environment.
Values are parsed by environs (marshmallow's fields and validators); a bad value
raises ``ImproperlyConfigured`` with a message that starts with the variable's
name, so the process stops before it serves a single request. A blank value
counts as unset.

A new variable is one line in :func:`load` (or in the group of related
settings it belongs to) read through :class:`Environment`, one field of
:class:`Config`, one row in README's table and one case in tests/test_config.py.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from environs import Env, EnvValidationError
from marshmallow.validate import Range

from restapi.message_ids import MAX_RETENTION_DAYS, RING_DAYS
from restapi.rates import normalise_rate

BASE_DIR = Path(__file__).resolve().parent.parent

ONE_YEAR_SECONDS = 365 * 24 * 60 * 60
_TRUE = {spelling for word in ("1", "true", "yes", "on") for spelling in (word, word.upper(), word.title())}
_FALSE = {spelling for word in ("0", "false", "no", "off") for spelling in (word, word.upper(), word.title())}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Config:
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    data_dir: Path
    database: dict[str, Any]
    embedded: bool
    redis_url: str | None
    redis_cluster: bool
    redis_timeout: float
    default_timeout: int
    max_timeout: int
    max_text_length: int
    max_body_bytes: int
    max_collect: int
    max_wait: int
    throttle_rate: str
    read_throttle_rate: str
    encryption_keys: list[tuple[str, bytes]] | None
    trusted_proxies: list[str]
    retention_days: int
    log_file: Path
    log_level: str
    tls: bool
    hsts_seconds: int
    hsts_include_subdomains: bool
    hsts_preload: bool
    log_rotation: str
    log_format: str
    static_root: Path
    metrics_dir: Path | None
    sentry_dsn: str | None
    sentry_environment: str
    sentry_traces_sample_rate: float


class Environment(Env):
    """
    environs' parsers (marshmallow's fields and validators) over one set of
    variables, ``os.environ`` by default; a blank value counts as unset. Each
    read below turns a failure into an ``ImproperlyConfigured`` whose message
    starts with the variable's name.
    """

    def __init__(self, source: Mapping[str, str] | None = None) -> None:
        super().__init__(eager=True)
        self.source = os.environ if source is None else source

    def _get_value(self, env_key: str, default: Any) -> Any:
        value = self.source.get(env_key)
        if value is None or not value.strip():
            return default
        return value.strip()

    def text(self, name: str, default: str | None = None) -> str | None:
        return self._read(self.str, name, default)

    def boolean(self, name: str, default: bool) -> bool:
        return self._read(
            self.bool,
            name,
            default,
            truthy=_TRUE,
            falsy=_FALSE,
            error_messages={"invalid": "expected one of 1/0, true/false, yes/no, on/off; got {input!r}."},
        )

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        return self._bounded(self.int, name, default, minimum, maximum, expected="a whole number")

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        return self._bounded(self.float, name, default, minimum, maximum, expected="a number")

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        """One of ``choices`` (written in the case they are returned in), in any case."""
        raw = self.text(name, default)
        value = raw.upper() if choices[0].isupper() else raw.lower()
        if value not in choices:
            raise ImproperlyConfigured(f"{name}: expected {', '.join(choices[:-1])} or {choices[-1]}, got {raw!r}.")
        return value

    def csv(self, name: str, default: Sequence[str]) -> list[str]:
        items = self._read(self.list, name, list(default))
        return [item.strip() for item in items if item.strip()]

    def directory(self, name: str, default: Path | None) -> Path | None:
        """An absolute folder path, created if missing."""
        path = self._read(self.path, name, default)
        if path is default:
            return path
        path = path.expanduser()
        if not path.is_absolute():
            raise ImproperlyConfigured(f"{name}: expected an absolute path, got {str(path)!r}.")
        _make_directory(name, path)
        return path

    def parsed(self, name: str, default: str | None, parse: Callable[[str], _T]) -> _T | None:
        """``parse(value)``; the message of a ValueError it raises follows the variable's name."""
        raw = self.text(name, default)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None

    def is_blank(self, name: str) -> bool:
        """Set, but to nothing but white space."""
        return name in self.source and not self.source[name].strip()

    def _bounded(
        self, parse: Callable[..., _T], name: str, default: Any, minimum: Any, maximum: Any, *, expected: str
    ) -> _T:
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        return self._read(
            parse,
            name,
            default,
            validate=Range(min=minimum, max=maximum, error=f"must be {bounds}, got {{input}}."),
            # marshmallow names no input in "special" (NaN and infinities, which no setting takes).
            error_messages={"invalid": f"expected {expected}, got {{input!r}}.", "special": f"expected {expected}."},
        )

    @staticmethod
    def _read(parse: Callable[..., _T], name: str, default: Any, **kwargs: Any) -> _T:
        try:
            return parse(name, default, **kwargs)
        except EnvValidationError as exc:
            messages = exc.error_messages if isinstance(exc.error_messages, list) else [str(exc)]
            raise ImproperlyConfigured(f"{name}: {' '.join(messages)}") from None


def _make_directory(name: str, path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}: cannot create {path}: {exc.strerror}.") from None


def _database(env: Environment, data_dir: Path) -> tuple[dict[str, Any], bool]:
    url = env.text("DATABASE_URL")
    if url is None:
        path = data_dir / "messages.sqlite3"
        return _sqlite_settings(path), True
    url, hosts, ports = _split_host_list(url)
    # Seconds a connection is kept for the next request of its thread. The
    # asynchronous server runs each request on a thread of its own, so there a
    # kept connection would never be used again: its entry point sets 0.
    conn_max_age = env.integer("CHAT_CONN_MAX_AGE", 600, minimum=0)
    try:
        database = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises several types for bad URLs.
        raise ImproperlyConfigured(f"DATABASE_URL: cannot parse {url!r}: {exc}") from None
    if hosts:
        # libpq takes the lists as they are and tries the hosts in order.
        database["HOST"], database["PORT"] = hosts, ports
    engine = database.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        return _sqlite_settings(Path(database["NAME"])), True
    if engine != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL: only postgres:// and sqlite:// URLs are supported, got {url!r}.")
    # Django's backend with a health check that needs no round trip (see its docstring).
    database["ENGINE"] = "restapi.storage.postgresql"
    database.setdefault("OPTIONS", {})
    # A database that does not answer must not hold a worker for minutes.
    database["OPTIONS"].setdefault("connect_timeout", 5)
    # The storage layer's statements as prepared statements with generic plans
    # (restapi/storage/postgresql): off behind a pooler that cannot carry them.
    database["OPTIONS"]["prepared_statements"] = env.boolean("CHAT_DB_PREPARED_STATEMENTS", True)
    return database, False


def _split_host_list(url: str) -> tuple[str, str | None, str | None]:
    """
    Take libpq's list of hosts out of ``postgres://user@db1:5432,db2:5432/name?...``.

    dj-database-url reads one host; libpq tries each of a list in turn, and with
    ``target_session_attrs=read-write`` keeps the first that accepts writes, which
    is how every app host finds the primary after a failover. Returns the URL with
    the first host alone, and the hosts and ports as comma-separated lists (None
    for a single host).
    """
    parts = urlsplit(url)
    userinfo, at, host_list = parts.netloc.rpartition("@")
    if "," not in host_list:
        return url, None, None
    hosts, ports = [], []
    for item in host_list.split(","):
        address = urlsplit(f"//{item}")
        try:
            host, port = address.hostname, address.port
        except ValueError:  # a port that is not a number from 0 to 65535
            host = None
        if not host:
            raise ImproperlyConfigured(f"DATABASE_URL: {item!r} in the host list is not host[:port].")
        hosts.append(host)
        ports.append(str(port or 5432))
    first = parts._replace(netloc=f"{userinfo}{at}{host_list.split(',')[0]}")
    return urlunsplit(first), ",".join(hosts), ",".join(ports)


def _sqlite_settings(path: Path) -> dict[str, Any]:
    return {
        # Django's backend with a clock that orders messages by creation (see its docstring).
        "ENGINE": "restapi.storage.sqlite",
        "NAME": str(path),
        "OPTIONS": {
            # WAL lets readers run beside the single writer; synchronous=FULL makes
            # each commit survive a power cut, which a 201 promises.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            # Writers take the lock at BEGIN, so concurrent writers queue on the
            # busy timeout instead of failing with "database is locked" mid-way.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        "TEST": {"NAME": str(path.with_name(f"test_{path.name}"))},
    }


def _secret_key(env: Environment, data_dir: Path, *, embedded: bool, debug: bool) -> str:
    key = env.text("SECRET_KEY")
    if key is None:
        if not embedded:
            raise ImproperlyConfigured(
                "SECRET_KEY: must be set when DATABASE_URL points at a server database; every host "
                "of a deployment needs the same key."
            )
        return _embedded_secret_key(data_dir)
    if not debug and (len(key) < 50 or key.startswith("django-insecure")):
        raise ImproperlyConfigured(
            "SECRET_KEY: use at least 50 random characters (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`)."
        )
    return key


def _embedded_secret_key(data_dir: Path) -> str:
    """A random key made once per data folder, so the embedded mode has no shared default."""
    path = data_dir / "secret_key"
    if not path.exists():
        # Written aside and linked into place: concurrent first starts agree on one key.
        draft = data_dir / f".secret_key.{os.getpid()}"
        draft.write_text(secrets.token_urlsafe(50))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _encryption_keys(raw: str) -> list[tuple[str, bytes]]:
    # Imported here: the key grammar lives beside the cipher that uses the keys.
    from restapi.sealing import parse_keys

    return parse_keys("CHAT_ENCRYPTION_KEYS", raw)


def _trusted_proxies(env: Environment) -> list[str]:
    networks = []
    for item in env.csv("CHAT_TRUSTED_PROXIES", []):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"CHAT_TRUSTED_PROXIES: {item!r} is not an IP address or network (such as 10.0.0.0/8)."
            ) from None
    return networks


def _metrics_dir(env: Environment) -> Path | None:
    # prometheus-client reads this variable itself, and switches to multi-process
    # mode whenever it is present, even empty (then writing its files into the
    # working folder); checked here so a bad value stops the start.
    if env.is_blank("PROMETHEUS_MULTIPROC_DIR"):
        raise ImproperlyConfigured("PROMETHEUS_MULTIPROC_DIR: set but empty; give a folder or unset it.")
    return env.directory("PROMETHEUS_MULTIPROC_DIR", None)


def _sentry_dsn(dsn: str) -> str:
    # Imported here: only a deployment that reports to Sentry needs the SDK loaded.
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(dsn)
    except BadDsn as exc:
        raise ValueError(f"not a Sentry DSN ({exc}); expected https://<key>@<host>/<project>.") from None
    return dsn


def _redis(env: Environment) -> dict[str, Any]:
    url = env.text("REDIS_URL")
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL: expected a redis://, rediss:// or unix:// URL, got {url!r}.")
    cluster = env.boolean("REDIS_CLUSTER", False)
    if cluster and (url is None or url.startswith("unix://")):
        raise ImproperlyConfigured(
            "REDIS_CLUSTER: needs REDIS_URL to name one node of the cluster as redis://host:port "
            f"(or rediss://), got {url!r}."
        )
    timeout = env.number("REDIS_TIMEOUT", 0.1, minimum=0.001, maximum=5.0)
    return {"redis_url": url, "redis_cluster": cluster, "redis_timeout": timeout}


def _limits(env: Environment) -> dict[str, Any]:
    """The contract's limits: how long a message lives and is kept, how large it may be, how much one call does."""
    max_timeout = env.integer("CHAT_MAX_TIMEOUT", ONE_YEAR_SECONDS, minimum=1, maximum=100 * ONE_YEAR_SECONDS)
    default_timeout = env.integer("CHAT_DEFAULT_TIMEOUT", 60, minimum=0)
    if default_timeout > max_timeout:
        raise ImproperlyConfigured(
            f"CHAT_DEFAULT_TIMEOUT: must not exceed CHAT_MAX_TIMEOUT ({max_timeout}), got {default_timeout}."
        )
    return {
        "default_timeout": default_timeout,
        "max_timeout": max_timeout,
        "max_text_length": env.integer("CHAT_MAX_TEXT_LENGTH", 512, minimum=1, maximum=16384),
        "max_body_bytes": env.integer("CHAT_MAX_BODY_BYTES", 64 * 1024, minimum=1024, maximum=16 * 1024 * 1024),
        "max_collect": env.integer("CHAT_MAX_COLLECT", 1000, minimum=1, maximum=100_000),
        # The longest ?wait= (and lease wait) accepted; lower it when a proxy in front times out sooner.
        "max_wait": env.integer("CHAT_MAX_WAIT", 60, minimum=0, maximum=60),
        "retention_days": _retention_days(env),
    }


def _retention_days(env: Environment) -> int:
    days = env.integer("CHAT_RETENTION_DAYS", 30, minimum=0)
    if days > MAX_RETENTION_DAYS:
        raise ImproperlyConfigured(
            f"CHAT_RETENTION_DAYS: must be at most {MAX_RETENTION_DAYS}, got {days}. The message table is a ring "
            f'of {RING_DAYS} day partitions (docs/SCALING.md, "Retention at scale"): a day\'s partition must be '
            f"past retention and emptied before the ring comes round to it again, {RING_DAYS} days later, "
            "which leaves room for no longer retention."
        )
    return days


def _logging(env: Environment) -> dict[str, Any]:
    log_file = Path(env.text("LOG_FILE", "chat_server.log")).expanduser()
    if not log_file.is_absolute():
        log_file = BASE_DIR / log_file
    if not log_file.parent.is_dir():
        raise ImproperlyConfigured(f"LOG_FILE: the folder {log_file.parent} does not exist.")
    return {
        "log_file": log_file,
        "log_level": env.choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
        "log_rotation": env.choice("LOG_ROTATION", "size", ["size", "external"]),
        "log_format": env.choice("LOG_FORMAT", "text", ["text", "json"]),
    }


def load(source: Mapping[str, str] | None = None) -> Config:
    """Read and validate the service's configuration from ``source`` (default: ``os.environ``)."""
    env = Environment(source)
    debug = env.boolean("DEBUG", False)

    data_dir = Path(env.text("DATA_DIR", str(BASE_DIR / "data"))).expanduser()
    _make_directory("DATA_DIR", data_dir)

    database, embedded = _database(env, data_dir)
    secret_key = _secret_key(env, data_dir, embedded=embedded, debug=debug)

    allowed_hosts = env.csv("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if embedded else [])
    if not allowed_hosts:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS: must be set when DATABASE_URL points at a server database "
            "(a comma-separated list of the host names the service answers to)."
        )

    return Config(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        data_dir=data_dir,
        database=database,
        embedded=embedded,
        **_redis(env),
        **_limits(env),
        throttle_rate=env.parsed("CHAT_THROTTLE_RATE", "100/day", normalise_rate),
        read_throttle_rate=env.parsed("CHAT_READ_THROTTLE_RATE", "600/min", normalise_rate),
        encryption_keys=env.parsed("CHAT_ENCRYPTION_KEYS", None, _encryption_keys),
        trusted_proxies=_trusted_proxies(env),
        **_logging(env),
        tls=env.boolean("TLS", False),
        hsts_seconds=env.integer("HSTS_SECONDS", ONE_YEAR_SECONDS, minimum=0, maximum=2 * ONE_YEAR_SECONDS),
        hsts_include_subdomains=env.boolean("HSTS_INCLUDE_SUBDOMAINS", True),
        hsts_preload=env.boolean("HSTS_PRELOAD", False),
        static_root=env.directory("STATIC_ROOT", BASE_DIR / "EphemeralMessages" / "static"),
        metrics_dir=_metrics_dir(env),
        sentry_dsn=env.parsed("SENTRY_DSN", None, _sentry_dsn),
        sentry_environment=env.text("SENTRY_ENVIRONMENT", "production"),
        sentry_traces_sample_rate=env.number("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0, maximum=1.0),
    )


@dataclass(frozen=True)
class GunicornConfig:
    """What deploy/gunicorn.conf.py takes from the environment; read without loading Django's settings."""

    bind: list[str]
    worker_class: str
    workers: int
    threads: int
    worker_connections: int
    keepalive: int
    max_requests: int
    max_requests_jitter: int
    preload_app: bool
    timeout: int
    graceful_timeout: int
    forwarded_allow_ips: str
    metrics_dir: Path | None


def load_gunicorn(source: Mapping[str, str] | None = None) -> GunicornConfig:
    """Read the ``GUNICORN_*`` settings (defaults: the values docs/PERFORMANCE.md measured)."""
    env = Environment(source)
    return GunicornConfig(
        bind=env.csv("GUNICORN_BIND", ["127.0.0.1:8000"]),
        worker_class=env.text("GUNICORN_WORKER_CLASS", "gthread"),
        workers=env.integer("GUNICORN_WORKERS", os.cpu_count() or 1, minimum=1),
        threads=env.integer("GUNICORN_THREADS", 8, minimum=1),
        # Each waiting client of the asynchronous worker holds a connection.
        worker_connections=env.integer("GUNICORN_WORKER_CONNECTIONS", 20_000, minimum=1),
        keepalive=env.integer("GUNICORN_KEEPALIVE", 5, minimum=0),
        max_requests=env.integer("GUNICORN_MAX_REQUESTS", 100_000, minimum=0),
        max_requests_jitter=env.integer("GUNICORN_MAX_REQUESTS_JITTER", 10_000, minimum=0),
        preload_app=env.boolean("GUNICORN_PRELOAD", True),
        timeout=env.integer("GUNICORN_TIMEOUT", 30, minimum=1),
        graceful_timeout=env.integer("GUNICORN_GRACEFUL_TIMEOUT", 20, minimum=0),
        forwarded_allow_ips=env.text("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
        metrics_dir=_metrics_dir(env),
    )
