"""Whether the client of a request is still connected, as far as the server can tell."""

from __future__ import annotations

import socket

from django.http import HttpRequest


def client_has_gone(request: HttpRequest) -> bool:
    """
    True when the client has closed its connection (or half-closed it, sending nothing more).

    gunicorn hands the connection's socket to the application. A client that
    closed it has left an end-of-file there once its request has been read, so
    peeking at the socket without waiting reads nothing; one that is waiting
    for its answer leaves it with no data to read. Behind nginx the socket is
    nginx's connection, which nginx closes when its client aborts. Anything the
    check cannot tell (no such socket, as under the test client or another
    server; a TLS socket, which cannot peek) counts as still connected.
    """
    connection = request.META.get("gunicorn.socket")
    if connection is None:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    except (OSError, ValueError):
        return False
