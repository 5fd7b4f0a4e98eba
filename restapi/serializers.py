"""
The wire format: every validation rule of the API and every response shape.

The rules read ``settings.CHAT`` when a request is validated, so a changed
setting takes effect without re-importing this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from django.conf import settings
from rest_framework import serializers

from restapi.characters import USERNAME_MAX_LENGTH, is_blank, normalise_username
from restapi.storage import StoredMessage

_DIGITS = re.compile(r"^[0-9]+\Z")
# Longer than any allowed timeout, and too long for int() to parse safely.
TIMEOUT_MAX_DIGITS = 20


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings, kept exactly as sent."""

    default_error_messages = {
        "not_a_string": "Must be a string.",
        "surrogate": "Must be valid Unicode text (this contains an unpaired surrogate).",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("surrogate")
        return data


class UsernameField(StrictCharField):
    """A username, as the inbox it names: see :func:`restapi.characters.normalise_username`."""

    default_error_messages = {
        "invalid": f"Enter a username of 1 to {USERNAME_MAX_LENGTH} characters: letters, digits and @ . + - _ only.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=USERNAME_MAX_LENGTH, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        raw = super().to_internal_value(data)
        if not raw:
            return raw
        username = normalise_username(raw)
        if username is None:
            self.fail("invalid")
        return username


class MessageTextField(StrictCharField):
    default_error_messages = {
        "blank": "This field may not be blank.",
        "too_long": "Ensure this field has no more than {max_length} characters (it has {length}).",
    }

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        if is_blank(text):
            self.fail("blank")
        max_length = settings.CHAT["MAX_TEXT_LENGTH"]
        if len(text) > max_length:
            self.fail("too_long", max_length=max_length, length=len(text))
        return text


class TimeoutField(serializers.Field):
    """Seconds to live: a JSON integer, or a string of digits."""

    default_error_messages = {
        "invalid": 'Must be a whole number of seconds: an integer such as 30, or a string of digits such as "30".',
        "out_of_range": "Must be between 0 and {max_timeout} seconds.",
    }

    def to_internal_value(self, data: Any) -> int:
        max_timeout = settings.CHAT["MAX_TIMEOUT"]
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and _DIGITS.match(data):
            if len(data) > TIMEOUT_MAX_DIGITS:
                self.fail("out_of_range", max_timeout=max_timeout)
            value = int(data)
        else:
            self.fail("invalid")
        if not 0 <= value <= max_timeout:
            self.fail("out_of_range", max_timeout=max_timeout)
        return value

    def to_representation(self, value: int) -> int:
        return value


def _default_timeout() -> int:
    return settings.CHAT["DEFAULT_TIMEOUT"]


class MessageCreateSerializer(serializers.Serializer):
    """The body of ``POST /chat``."""

    username = UsernameField()
    text = MessageTextField(max_length=None)
    timeout = TimeoutField(required=False, default=_default_timeout)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Unknown fields are refused, so that a misspelt "timout" is not silently ignored.
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {str(name): [f"Unknown field; this endpoint takes {', '.join(self.fields)}."] for name in unknown}
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**exc.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return validated


class InboxSerializer(serializers.Serializer):
    """The path parameter of ``GET /chats/<username>``: the same rule as the body's username."""

    username = UsernameField()


# How every expiration_date leaves the service: ISO 8601 in UTC, with microseconds and a Z.
EXPIRATION_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class MessageSerializer(serializers.Serializer):
    """A message as ``GET /chat/<id>`` shows it."""

    username = serializers.CharField()
    text = serializers.CharField()
    expiration_date = serializers.DateTimeField(format=EXPIRATION_DATE_FORMAT)

    def to_representation(self, instance: StoredMessage) -> dict[str, Any]:
        # The declared fields are the shape (and what the API schema reads);
        # writing the same dict directly skips DRF's per-request copy of every
        # field, the largest cost of this endpoint after the Redis round trip.
        # tests/test_representation.py holds the two equal.
        return {
            "username": instance.username,
            "text": instance.text,
            "expiration_date": instance.expiration_date.astimezone(UTC).strftime(EXPIRATION_DATE_FORMAT),
        }


class CollectedMessageSerializer(serializers.Serializer):
    """A message as ``GET /chats/<username>`` hands it out."""

    id = serializers.IntegerField()
    text = serializers.CharField()

    def to_representation(self, instance: StoredMessage) -> dict[str, Any]:
        # As MessageSerializer.to_representation: the declared fields, written directly.
        return {"id": instance.id, "text": instance.text}
