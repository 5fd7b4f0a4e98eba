"""Requests on behalf of a claimed inbox's owner."""

from __future__ import annotations


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``, as Django's test client takes headers."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
