"""The request id that ties the log lines of one request together."""

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# A caller-supplied id is kept only if it cannot forge or break a log line.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")


def new_request_id(supplied: str | None) -> str:
    """Return ``supplied`` if it is a safe id (from a proxy's X-Request-ID), else a fresh one."""
    if supplied and _ACCEPTABLE_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> contextvars.Token:
    return _request_id.set(request_id)


def unbind_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """
    Adds ``request_id`` to every record, ``-`` outside a request.

    Django logs each 4xx and 5xx answer ("Not Found: /x") once the middleware
    has returned, when the request's id is no longer bound; those records carry
    the request itself, and its id is taken from there.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(getattr(record, "request", None), "id", None) or _request_id.get()
        return True


class ClientErrorFilter(logging.Filter):
    """
    Logs a refused request as the client error it is: one WARNING line, no traceback.

    Django logs a Host header outside ALLOWED_HOSTS as an ERROR with the stack of
    the middleware that asked for the host; it is the client's mistake (or a
    scanner's), answered with a 400, and nothing in the service went wrong.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info = record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``LOG_FORMAT=json``), for log shippers that parse fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", _request_id.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
