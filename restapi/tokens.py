"""
Inbox tokens: made, hashed and checked here and nowhere else.

A token is 32 bytes (256 bits) from the operating system's cryptographic
source, written in URL-safe base64 without padding (43 characters). It is
shown once, when it is made; only its SHA-256 digest is stored.

A fast hash is the right one here, unlike for passwords. A slow, salted hash
(bcrypt, Argon2) exists to make guessing a *low-entropy* secret from its
digest expensive; a 256-bit random token cannot be guessed at any speed (2^255
tries on average), so slowing each try down buys nothing, and a salt defends
against precomputed tables that cannot exist for values nobody has seen. What a
fast hash does buy is a check that costs microseconds on every read of a
claimed inbox, instead of the tens of milliseconds a password hash spends by
design, which would also hand anyone able to send requests a cheap way to burn
the server's CPU.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32
# What token_urlsafe(TOKEN_BYTES) produces: 43 characters of the URL-safe base64 alphabet.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}\Z")


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The digest that is stored in place of the token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str | None, stored_hash: str) -> bool:
    """
    Whether ``token`` is the one whose digest is ``stored_hash``.

    The digests are compared in constant time, so how long a refusal takes says
    nothing about how much of a guess was right. A value that cannot be a token
    at all is refused after the same work, for the same reason.
    """
    well_formed = token is not None and TOKEN_PATTERN.match(token) is not None
    presented = token_hash(token if well_formed else "")
    return hmac.compare_digest(presented, stored_hash) and well_formed
