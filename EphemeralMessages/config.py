"""
Configuration read from the environment, parsed and validated in one place.

``settings.py`` calls :func:`load` once at start-up. Every variable the service
understands is read here and nowhere else; a bad value raises
``ImproperlyConfigured`` with a message that names the variable, so the process
stops before it serves a single request.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

ONE_YEAR_SECONDS = 365 * 24 * 60 * 60
THROTTLE_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_THROTTLE_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Config:
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    data_dir: Path
    database: dict[str, Any]
    embedded: bool
    redis_url: str | None
    redis_timeout: float
    default_timeout: int
    max_timeout: int
    max_text_length: int
    max_body_bytes: int
    max_collect: int
    throttle_rate: str
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


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected one of 1/0, true/false, yes/no, on/off; got {value!r}.")


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,18}", raw):
        raise ImproperlyConfigured(f"{name}: expected a whole number, got {raw!r}.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ImproperlyConfigured(f"{name}: must be {bounds}, got {value}.")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number of seconds, got {raw!r}.") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name}: must be between {minimum} and {maximum}, got {raw}.")
    return value


def _csv(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = _text(env, name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_throttle_rate(name: str, raw: str) -> str:
    """Validate a rate such as ``100/day`` or ``5/min``; return it normalised."""
    match = _THROTTLE_RATE.match(raw.lower())
    if not match or match.group(2) not in THROTTLE_PERIODS or int(match.group(1)) == 0:
        raise ImproperlyConfigured(
            f"{name}: expected '<requests>/<period>' with period one of second, minute, hour, day "
            f"(for example 100/day or 5/min), got {raw!r}."
        )
    return f"{int(match.group(1))}/{match.group(2)}"


def _database(env: Mapping[str, str], data_dir: Path) -> tuple[dict[str, Any], bool]:
    url = _text(env, "DATABASE_URL")
    if url is None:
        path = data_dir / "messages.sqlite3"
        return _sqlite_settings(path), True
    url, hosts, ports = _split_host_list(url)
    try:
        database = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
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
        "ENGINE": "django.db.backends.sqlite3",
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


def _secret_key(env: Mapping[str, str], data_dir: Path, *, embedded: bool, debug: bool) -> str:
    key = _text(env, "SECRET_KEY")
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


def _trusted_proxies(env: Mapping[str, str]) -> list[str]:
    networks = []
    for item in _csv(env, "CHAT_TRUSTED_PROXIES", []):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"CHAT_TRUSTED_PROXIES: {item!r} is not an IP address or network (such as 10.0.0.0/8)."
            ) from None
    return networks


def _directory(env: Mapping[str, str], name: str, default: Path | None) -> Path | None:
    """An absolute folder path; created if missing, like DATA_DIR."""
    raw = _text(env, name)
    if raw is None:
        return default
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ImproperlyConfigured(f"{name}: expected an absolute path, got {raw!r}.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}: cannot create {path}: {exc.strerror}.") from None
    return path


def _metrics_dir(env: Mapping[str, str]) -> Path | None:
    # prometheus-client switches to multi-process mode whenever the variable is
    # present, even empty (and then writes its files into the working folder).
    if "PROMETHEUS_MULTIPROC_DIR" in env and not env["PROMETHEUS_MULTIPROC_DIR"].strip():
        raise ImproperlyConfigured("PROMETHEUS_MULTIPROC_DIR: set but empty; give a folder or unset it.")
    return _directory(env, "PROMETHEUS_MULTIPROC_DIR", None)


def _sentry_dsn(env: Mapping[str, str]) -> str | None:
    dsn = _text(env, "SENTRY_DSN")
    if dsn is None:
        return None
    # Imported here: only a deployment that reports to Sentry needs the SDK loaded.
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(dsn)
    except BadDsn as exc:
        raise ImproperlyConfigured(
            f"SENTRY_DSN: not a Sentry DSN ({exc}); expected https://<key>@<host>/<project>."
        ) from None
    return dsn


def load(env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the whole configuration from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    debug = _boolean(env, "DEBUG", False)

    data_dir = Path(_text(env, "DATA_DIR", str(BASE_DIR / "data"))).expanduser()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"DATA_DIR: cannot create {data_dir}: {exc.strerror}.") from None

    database, embedded = _database(env, data_dir)
    secret_key = _secret_key(env, data_dir, embedded=embedded, debug=debug)

    allowed_hosts = _csv(env, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if embedded else [])
    if not allowed_hosts:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS: must be set when DATABASE_URL points at a server database "
            "(a comma-separated list of the host names the service answers to)."
        )

    redis_url = _text(env, "REDIS_URL")
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL: expected a redis://, rediss:// or unix:// URL, got {redis_url!r}.")

    max_timeout = _integer(env, "CHAT_MAX_TIMEOUT", ONE_YEAR_SECONDS, minimum=1, maximum=100 * ONE_YEAR_SECONDS)
    default_timeout = _integer(env, "CHAT_DEFAULT_TIMEOUT", 60, minimum=0)
    if default_timeout > max_timeout:
        raise ImproperlyConfigured(
            f"CHAT_DEFAULT_TIMEOUT: must not exceed CHAT_MAX_TIMEOUT ({max_timeout}), got {default_timeout}."
        )

    log_level = (_text(env, "LOG_LEVEL", "INFO") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ImproperlyConfigured(f"LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}.")
    log_file = Path(_text(env, "LOG_FILE", "chat_server.log")).expanduser()
    if not log_file.is_absolute():
        log_file = BASE_DIR / log_file
    if not log_file.parent.is_dir():
        raise ImproperlyConfigured(f"LOG_FILE: the folder {log_file.parent} does not exist.")

    log_rotation = (_text(env, "LOG_ROTATION", "size") or "size").lower()
    if log_rotation not in {"size", "external"}:
        raise ImproperlyConfigured(f"LOG_ROTATION: expected size or external, got {log_rotation!r}.")
    log_format = (_text(env, "LOG_FORMAT", "text") or "text").lower()
    if log_format not in {"text", "json"}:
        raise ImproperlyConfigured(f"LOG_FORMAT: expected text or json, got {log_format!r}.")

    return Config(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        data_dir=data_dir,
        database=database,
        embedded=embedded,
        redis_url=redis_url,
        redis_timeout=_number(env, "REDIS_TIMEOUT", 0.1, minimum=0.001, maximum=5.0),
        default_timeout=default_timeout,
        max_timeout=max_timeout,
        max_text_length=_integer(env, "CHAT_MAX_TEXT_LENGTH", 512, minimum=1, maximum=16384),
        max_body_bytes=_integer(env, "CHAT_MAX_BODY_BYTES", 64 * 1024, minimum=1024, maximum=16 * 1024 * 1024),
        max_collect=_integer(env, "CHAT_MAX_COLLECT", 1000, minimum=1, maximum=100_000),
        throttle_rate=parse_throttle_rate("CHAT_THROTTLE_RATE", _text(env, "CHAT_THROTTLE_RATE", "100/day")),
        trusted_proxies=_trusted_proxies(env),
        retention_days=_integer(env, "CHAT_RETENTION_DAYS", 30, minimum=0, maximum=36500),
        log_file=log_file,
        log_level=log_level,
        tls=_boolean(env, "TLS", False),
        hsts_seconds=_integer(env, "HSTS_SECONDS", ONE_YEAR_SECONDS, minimum=0, maximum=2 * ONE_YEAR_SECONDS),
        hsts_include_subdomains=_boolean(env, "HSTS_INCLUDE_SUBDOMAINS", True),
        hsts_preload=_boolean(env, "HSTS_PRELOAD", False),
        log_rotation=log_rotation,
        log_format=log_format,
        static_root=_directory(env, "STATIC_ROOT", BASE_DIR / "EphemeralMessages" / "static"),
        # prometheus-client reads this variable itself; it is checked here so a bad
        # value stops the service at start instead of at the first metric update.
        metrics_dir=_metrics_dir(env),
        sentry_dsn=_sentry_dsn(env),
        sentry_environment=_text(env, "SENTRY_ENVIRONMENT", "production"),
        sentry_traces_sample_rate=_number(env, "SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0, maximum=1.0),
    )
