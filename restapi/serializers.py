"""
The wire format: every validation rule of the API and every response shape.

The rules read ``settings.CHAT`` when a request is validated, so a changed
setting takes effect without re-importing this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
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


class BoundedSecondsField(serializers.Field):
    """A whole number of seconds within bounds: a JSON integer, or a string of digits (as in a query)."""

    default_error_messages = {
        "invalid": 'Must be a whole number of seconds: an integer such as 30, or a string of digits such as "30".',
        "out_of_range": "Must be between {minimum} and {maximum} seconds.",
    }

    def __init__(self, *, minimum: int, maximum: int = 0, **kwargs: Any) -> None:
        self.minimum = minimum
        self._maximum = maximum
        super().__init__(**kwargs)

    @property
    def maximum(self) -> int:
        return self._maximum

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and _DIGITS.match(data):
            if len(data) > TIMEOUT_MAX_DIGITS:
                self.fail("out_of_range", minimum=self.minimum, maximum=self.maximum)
            value = int(data)
        else:
            self.fail("invalid")
        if not self.minimum <= value <= self.maximum:
            self.fail("out_of_range", minimum=self.minimum, maximum=self.maximum)
        return value

    def to_representation(self, value: int) -> int:
        return value


# The longest a request may ever wait for mail (CHAT_MAX_WAIT may lower it);
# proxies in front must allow more.
MAX_WAIT_SECONDS = 60
MAX_LEASE_SECONDS = 3600
DEFAULT_LEASE_SECONDS = 30


class TimeoutField(BoundedSecondsField):
    """Seconds a message lives: 0 up to CHAT_MAX_TIMEOUT, read when a request is validated."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=0, **kwargs)

    @property
    def maximum(self) -> int:
        return settings.CHAT["MAX_TIMEOUT"]


class StrictSerializer(serializers.Serializer):
    """A body whose unknown fields are refused, so that a misspelt "timout" is not silently ignored."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {str(name): [f"Unknown field; this endpoint takes {', '.join(self.fields)}."] for name in unknown}
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**exc.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return validated


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """
    ``data`` checked by the rules of ``serializer_class``: the validated values,
    or a ValidationError with the same detail as ``is_valid(raise_exception=True)``.

    One instance of each serializer checks every request: building one per
    request deep-copies all its fields, which cost as much as the rest of the
    validation. Checking reads the fields and writes nothing to them (the rules
    read settings.CHAT as they run), so the instance is shared by threads.
    """
    return _checker(serializer_class).run_validation(data)


@functools.cache
def _checker(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    checker = serializer_class()
    checker.fields  # noqa: B018 - built once here, not by the first requests at the same time
    return checker


def _default_timeout() -> int:
    return settings.CHAT["DEFAULT_TIMEOUT"]


class MessageCreateSerializer(StrictSerializer):
    """The body of ``POST /chat``."""

    username = UsernameField()
    text = MessageTextField(max_length=None)
    timeout = TimeoutField(required=False, default=_default_timeout)


class ClaimSerializer(StrictSerializer):
    """The body of ``POST /inboxes``: the username to claim, by the same rule as a recipient's."""

    username = UsernameField()


class ClaimedInboxSerializer(serializers.Serializer):
    """A claim's token, shown only in the answer that makes it."""

    username = serializers.CharField()
    token = serializers.CharField()


class WaitField(BoundedSecondsField):
    """How long a collect or a lease waits for mail when the inbox is empty: 0 up to CHAT_MAX_WAIT."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", 0)
        super().__init__(minimum=0, **kwargs)

    @property
    def maximum(self) -> int:
        return settings.CHAT["MAX_WAIT"]


class InboxSerializer(serializers.Serializer):
    """
    ``GET /chats/<username>``: the path's username (the same rule as the body's)
    and ``?wait=`` (the waiting itself happens in ``restapi.longpoll``).
    """

    username = UsernameField()
    wait = WaitField()


class LeaseRequestSerializer(StrictSerializer):
    """The body of ``POST /chats/<username>/leases``."""

    seconds = BoundedSecondsField(
        minimum=1,
        maximum=MAX_LEASE_SECONDS,
        required=False,
        default=DEFAULT_LEASE_SECONDS,
        help_text=(
            f"How long the lease hides its messages from everyone else, "
            f"1 to {MAX_LEASE_SECONDS} (default {DEFAULT_LEASE_SECONDS})."
        ),
    )
    wait = WaitField()


# How every expiration_date leaves the service: ISO 8601 in UTC, with microseconds and a Z.
EXPIRATION_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_expiration_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(EXPIRATION_DATE_FORMAT)


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
            "expiration_date": format_expiration_date(instance.expiration_date),
        }


class CollectedMessageSerializer(serializers.Serializer):
    """A message as ``GET /chats/<username>`` hands it out."""

    id = serializers.IntegerField()
    text = serializers.CharField()

    def to_representation(self, instance: StoredMessage) -> dict[str, Any]:
        # As MessageSerializer.to_representation: the declared fields, written directly.
        return {"id": instance.id, "text": instance.text}


# Bodies the views, DRF's exception handler and restapi.middleware write
# directly; these serializers describe their shape for the API schema.


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words a client developer can act on.")


class RequestIdDetailSerializer(DetailSerializer):
    request_id = serializers.CharField(help_text="The request id, also in the X-Request-ID header and the log.")


class FieldErrorsSerializer(serializers.Serializer):
    """Each invalid field, named, with what is wrong with it; an unknown field is named too."""

    username = serializers.ListField(child=serializers.CharField(), required=False)
    text = serializers.ListField(child=serializers.CharField(), required=False)
    timeout = serializers.ListField(child=serializers.CharField(), required=False)
    wait = serializers.ListField(child=serializers.CharField(), required=False)
    seconds = serializers.ListField(child=serializers.CharField(), required=False)


class CreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The new message's id; GET /chat/{id} reads it.")


class EndpointSerializer(serializers.Serializer):
    method = serializers.CharField()
    url = serializers.CharField()


class EndpointsSerializer(serializers.Serializer):
    send = EndpointSerializer()
    read = EndpointSerializer()
    collect = EndpointSerializer()


class ApiRootSerializer(serializers.Serializer):
    service = serializers.CharField()
    endpoints = EndpointsSerializer()
    docs = serializers.URLField(help_text="This API's documentation page.")
    schema = serializers.URLField(help_text="This API's OpenAPI 3 schema.")


class LeaseSerializer(serializers.Serializer):
    lease = serializers.CharField(
        allow_null=True, help_text="The lease's opaque id, to acknowledge it with; null when nothing was leased."
    )
    expires_at = serializers.CharField(
        allow_null=True, help_text="When the lease ends (UTC) unless acknowledged; null when nothing was leased."
    )
    messages = CollectedMessageSerializer(many=True, help_text="The leased messages, oldest first.")
