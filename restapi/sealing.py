"""
Texts sealed at rest with AES-256-GCM under ``CHAT_ENCRYPTION_KEYS``.

A sealed text is a versioned envelope::

    version (1 byte, 1) | key id length (1 byte) | key id (ASCII) | nonce (12 bytes) | ciphertext and tag

The associated data is the envelope's header and the message's id, so a
ciphertext opens only in the row it was written for: copied to another
message, or relabelled with another key id, it fails authentication instead
of showing one person's text as another's. Each text gets a fresh random
nonce; at one key's 2**32 texts the chance of a repeat reaches 2**-32, far
beyond the life of a key that rotates.

The first key seals; every key listed opens. Keys rotate by putting a new one
first, re-sealing old rows (``manage.py reseal_messages``) and then removing
the old key.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from restapi.storage import StoredMessage

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_AAD_PREFIX = b"ephemeral-messages:text:"


class UnreadableText(Exception):
    """A sealed text that no configured key opens: its key was removed, or the bytes were changed."""


@dataclass(frozen=True)
class Keyring:
    """The configured keys, the first of which seals."""

    keys: dict[str, bytes]
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ciphers", {key_id: AESGCM(key) for key_id, key in self.keys.items()})

    @property
    def current_key_id(self) -> str:
        return next(iter(self.keys))

    def seal(self, message_id: int, text: str) -> bytes:
        """``text`` encrypted under the first key, for the row of ``message_id`` only."""
        key_id = self.current_key_id
        header = _header(key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._ciphers[key_id].encrypt(nonce, text.encode(), _associated_data(header, message_id))
        return header + nonce + ciphertext

    def open(self, message_id: int, sealed: bytes) -> str:
        """The text sealed in ``sealed`` for ``message_id``; :class:`UnreadableText` if no key opens it."""
        sealed = bytes(sealed)
        key_id = sealed_key_id(sealed)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnreadableText(
                f"message {message_id} is sealed under key {key_id!r}, which is not in CHAT_ENCRYPTION_KEYS"
            )
        header_length = 2 + len(key_id)
        nonce = sealed[header_length : header_length + NONCE_BYTES]
        try:
            plain = cipher.decrypt(
                nonce, sealed[header_length + NONCE_BYTES :], _associated_data(sealed[:header_length], message_id)
            )
        except InvalidTag:
            raise UnreadableText(
                f"message {message_id}: its sealed text does not authenticate under key {key_id!r} "
                "(changed, or copied from another row)"
            ) from None
        return plain.decode()


def readable(message: StoredMessage, ring: Keyring | None) -> StoredMessage:
    """``message`` with its text opened; :class:`UnreadableText` if no key of ``ring`` opens it."""
    if message.sealed_text is None:
        return message
    if ring is None:
        raise UnreadableText(f"message {message.id} is sealed, and CHAT_ENCRYPTION_KEYS is not set")
    return replace(message, text=ring.open(message.id, message.sealed_text), sealed_text=None)


def sealed_key_id(sealed: bytes) -> str:
    """The id of the key that sealed ``sealed``."""
    if len(sealed) < 2 or sealed[0] != VERSION:
        raise UnreadableText(f"not a sealed text of version {VERSION}")
    return sealed[2 : 2 + sealed[1]].decode("ascii", errors="replace")


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes([VERSION, len(encoded)]) + encoded


def _associated_data(header: bytes, message_id: int) -> bytes:
    return _AAD_PREFIX + header + message_id.to_bytes(8, "big")


def new_key() -> str:
    """A fresh key as CHAT_ENCRYPTION_KEYS takes it: 32 random bytes in URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_keys(name: str, raw: str) -> list[tuple[str, bytes]]:
    """``'k2:<key>,k1:<key>'`` as (key id, key) pairs, first first; ImproperlyConfigured naming ``name`` if bad."""
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate((item.strip() for item in raw.split(",")), start=1):
        if not entry:
            continue
        key_id, colon, encoded = entry.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not colon or not KEY_ID_PATTERN.fullmatch(key_id):
            raise ImproperlyConfigured(
                f"{name}: entry {position} must be <key id>:<key>, the id 1 to 32 of A-Z a-z 0-9 _ . -"
            )
        if any(key_id == known for known, _ in keys):
            raise ImproperlyConfigured(f"{name}: the key id {key_id!r} is listed twice.")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            # The key itself is never repeated in the message: it is a secret.
            raise ImproperlyConfigured(
                f"{name}: the key {key_id!r} is not {KEY_BYTES} bytes in URL-safe base64; make one with "
                "`python3 -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`."
            )
        keys.append((key_id, key))
    if not keys:
        raise ImproperlyConfigured(f"{name}: set but lists no key; give <key id>:<key> entries or unset it.")
    return keys


@lru_cache(maxsize=1)
def keyring() -> Keyring | None:
    """The process's keyring from ``settings.CHAT['ENCRYPTION_KEYS']``; None when texts are kept as sent."""
    keys = settings.CHAT.get("ENCRYPTION_KEYS")
    if not keys:
        return None
    return Keyring(dict(keys))


@receiver(setting_changed)
def _forget_keyring(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHAT":
        keyring.cache_clear()
