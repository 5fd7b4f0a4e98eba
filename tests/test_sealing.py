"""Sealed texts: AES-GCM under the first configured key, bound to their row, opened by any listed key."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured

from restapi.sealing import Keyring, UnreadableText, new_key, parse_keys, sealed_key_id

OLD = base64.urlsafe_b64decode(new_key())
NEW = base64.urlsafe_b64decode(new_key())


def test_a_sealed_text_opens_to_the_text_and_does_not_contain_it() -> None:
    ring = Keyring({"k1": OLD})
    sealed = ring.seal(42, "meet me at the station")

    assert b"station" not in sealed
    assert sealed_key_id(sealed) == "k1"
    assert ring.open(42, sealed) == "meet me at the station"


def test_every_seal_uses_a_fresh_nonce() -> None:
    ring = Keyring({"k1": OLD})
    assert ring.seal(1, "same") != ring.seal(1, "same")


def test_the_first_key_seals_and_every_listed_key_opens() -> None:
    before = Keyring({"k1": OLD}).seal(7, "sealed before the rotation")
    rotated = Keyring({"k2": NEW, "k1": OLD})

    after = rotated.seal(8, "sealed after")

    assert sealed_key_id(after) == "k2"
    assert rotated.open(7, before) == "sealed before the rotation"
    assert rotated.open(8, after) == "sealed after"


def test_a_sealed_text_does_not_open_in_another_row() -> None:
    ring = Keyring({"k1": OLD})
    sealed = ring.seal(7, "for message 7")

    with pytest.raises(UnreadableText, match="copied from another row"):
        ring.open(8, sealed)


def test_a_sealed_text_relabelled_with_another_key_id_does_not_open() -> None:
    ring = Keyring({"k1": OLD, "k2": OLD})
    sealed = ring.seal(7, "text")
    relabelled = sealed[:2] + b"k2" + sealed[4:]

    with pytest.raises(UnreadableText):
        ring.open(7, relabelled)


def test_a_text_whose_key_is_gone_names_the_key_and_the_message() -> None:
    sealed = Keyring({"k1": OLD}).seal(7, "text")

    with pytest.raises(UnreadableText, match=r"message 7 is sealed under key 'k1'"):
        Keyring({"k2": NEW}).open(7, sealed)


def test_keys_parse_in_order_with_or_without_padding() -> None:
    old, new = new_key(), new_key().rstrip("=")

    assert parse_keys("CHAT_ENCRYPTION_KEYS", f" k2:{new} , k1:{old} ") == [
        ("k2", base64.urlsafe_b64decode(new + "=")),
        ("k1", base64.urlsafe_b64decode(old)),
    ]


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("k1", "must be <key id>:<key>"),
        (f"bad id!:{new_key()}", "must be <key id>:<key>"),
        ("k1:c2hvcnQ", "is not 32 bytes"),
        ("k1:not base64 at all!!", "is not 32 bytes"),
        (f"k1:{new_key()},k1:{new_key()}", "listed twice"),
        (" , ", "lists no key"),
    ],
)
def test_a_key_that_does_not_parse_is_refused_naming_the_variable(raw: str, complaint: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=complaint) as refused:
        parse_keys("CHAT_ENCRYPTION_KEYS", raw)
    assert str(refused.value).startswith("CHAT_ENCRYPTION_KEYS: ")
