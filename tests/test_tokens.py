"""Inbox tokens: 256 random bits, URL-safe, stored as a digest, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from restapi import tokens


def test_a_token_is_256_random_bits_in_url_safe_base64():
    token = tokens.new_token()

    assert tokens.TOKEN_PATTERN.match(token)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_tokens_do_not_repeat():
    assert len({tokens.new_token() for _ in range(1000)}) == 1000


def test_the_stored_form_is_the_sha256_digest():
    token = tokens.new_token()

    assert tokens.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()


def test_only_the_token_itself_matches_its_digest():
    token = tokens.new_token()
    stored = tokens.token_hash(token)

    assert tokens.token_matches(token, stored)
    assert not tokens.token_matches(tokens.new_token(), stored)
    assert not tokens.token_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)


@pytest.mark.parametrize("presented", [None, "", "short", "A" * 44, "A" * 42 + "!", "Ä" * 43])
def test_what_cannot_be_a_token_never_matches(presented):
    # Even a digest made from the malformed value itself.
    assert not tokens.token_matches(presented, tokens.token_hash(presented or ""))


def test_digests_are_compared_in_constant_time(monkeypatch):
    compared = []
    constant_time = hmac.compare_digest

    def compare_digest(a, b):
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", compare_digest)
    token = tokens.new_token()

    tokens.token_matches(token, tokens.token_hash(token))
    tokens.token_matches("malformed", tokens.token_hash(token))

    # Every check, a malformed one included, goes through hmac.compare_digest.
    assert len(compared) == 2
