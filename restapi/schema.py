"""
The OpenAPI description of the API, served at /api/schema/.

drf-spectacular reads the views and serializers; this module adds what it
cannot see by itself: the rules that the custom fields in
``restapi.serializers`` enforce (read from the same constants and settings, so
the description follows the code), the status codes, headers and error bodies
of each endpoint. ``tests/test_schema.py`` runs the schema against the live
service, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from restapi.authentication import CHALLENGE, PresentsBearerToken
from restapi.characters import is_invisible
from restapi.serializers import (
    TIMEOUT_MAX_DIGITS,
    USERNAME_MAX_LENGTH,
    ClaimedInboxSerializer,
    ClaimSerializer,
    CollectedMessageSerializer,
    LeaseRequestSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    UsernameField,
)

USERNAME_RULE = (
    f"1 to {USERNAME_MAX_LENGTH} characters: letters of any script (with the marks that follow them), "
    "digits and @ . + - _ only; no invisible characters. The name is normalised to NFKC (fullwidth, "
    "ligature and decomposed spellings are the same inbox as their plain form) and is case-sensitive."
)

# JSON Schema patterns are ECMA-262 regular expressions, searched rather than
# matched. The serializers classify characters by their Unicode category, so
# the schema names the same Unicode classes. Where a rule needs characters
# that no property class names (the marks, which tools approximate with
# unassigned code points; the characters that do not make a text non-blank),
# they are listed, as ranges of the Basic Multilingual Plane: characters
# beyond it would need escapes that not every reader of a schema understands.
# \Z does not exist there; "$" ends the string.


@functools.cache
def _bmp_class(predicate: Callable[[str], bool]) -> str:
    """The characters of the Basic Multilingual Plane for which ``predicate`` holds, as a class body of ranges."""
    codes = [code for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF and predicate(chr(code))]
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(rf"\u{a:04x}" if a == b else rf"\u{a:04x}-\u{b:04x}" for a, b in runs)


def _is_visible_mark(character: str) -> bool:
    return unicodedata.category(character)[0] == "M" and not is_invisible(character)


def username_pattern() -> str:
    """Letters, each followed by any marks, digits and @ . + - _; the invisible letters are named in the text."""
    return rf"^(?:\p{{L}}[{_bmp_class(_is_visible_mark)}]*|[\p{{N}}_.@+-])+$"


def text_pattern() -> str:
    """Any text without NUL (which DRF refuses) that has a visible character (or the serializer refuses it)."""
    return rf"^[^\x00]*[^{_bmp_class(is_invisible)}][^\x00]*$"


def decimal_up_to(maximum: int) -> str:
    """A regular expression for the decimal numbers 0 to ``maximum``, written without leading zeros."""
    digits = str(maximum)
    width = len(digits)
    alternatives = []
    if width > 1:
        alternatives.append("[0-9]")
    if width > 2:
        alternatives.append(f"[1-9][0-9]{{1,{width - 2}}}")
    # Numbers as wide as the maximum: equal to it up to some digit, then smaller there.
    for position, digit in enumerate(map(int, digits)):
        lowest = 1 if position == 0 and width > 1 else 0
        if digit > lowest:
            rest = width - position - 1
            alternatives.append(digits[:position] + f"[{lowest}-{digit - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


def username_schema() -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": USERNAME_MAX_LENGTH,
        "pattern": username_pattern(),
        "description": f"The recipient: {USERNAME_RULE}",
        "example": "ann",
    }


class UsernameFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "restapi.serializers.UsernameField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return username_schema()


class MessageTextFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "restapi.serializers.MessageTextField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        max_length = settings.CHAT["MAX_TEXT_LENGTH"]
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": max_length,
            "pattern": text_pattern(),
            "description": (
                f"The message: 1 to {max_length} characters of any Unicode text except NUL, kept exactly as sent. "
                "Text with nothing visible (only white space, control characters, or invisible characters "
                "such as a zero-width space, a byte-order mark or U+3164 HANGUL FILLER) is refused as blank."
            ),
            "example": "See you at noon.",
        }


class BoundedSecondsFieldExtension(OpenApiSerializerFieldExtension):
    """Whole seconds: a JSON integer or a string of digits, within the field's bounds (read from settings now)."""

    target_class = "restapi.serializers.BoundedSecondsField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        field = self.target
        schema: dict[str, Any] = {
            "oneOf": [
                {"type": "integer", "minimum": field.minimum, "maximum": field.maximum},
                {
                    "type": "string",
                    # Digits whose value is within the bounds (the bounds in use are 0 or 1 to a maximum).
                    "pattern": f"^{'(?!0*$)' if field.minimum else ''}0*{decimal_up_to(field.maximum)}$",
                    "maxLength": TIMEOUT_MAX_DIGITS,
                },
            ],
        }
        if field.default is not serializers.empty:
            # A callable default (the timeout's) follows the settings; drf-spectacular leaves those out.
            schema["default"] = field.default() if callable(field.default) else field.default
        return schema


class TimeoutFieldExtension(BoundedSecondsFieldExtension):
    target_class = "restapi.serializers.TimeoutField"
    priority = 1  # before the extension of every BoundedSecondsField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        chat = settings.CHAT
        description = (
            f"Seconds the message lives, 0 to {chat['MAX_TIMEOUT']} (default {chat['DEFAULT_TIMEOUT']}): "
            f'a JSON integer such as 30, or a string of up to {TIMEOUT_MAX_DIGITS} digits such as "30" '
            "whose value is in that range. Booleans, fractions and negative numbers are refused."
        )
        return {**super().map_serializer_field(auto_schema, direction), "description": description, "example": 60}


def wait_description(what: str) -> str:
    return (
        f"Seconds to wait, 0 to {settings.CHAT['MAX_WAIT']} (default 0), when the inbox has nothing to hand out: "
        f"{what} as soon as a message arrives, or when the time is up. The wait answers early, "
        "with nothing, if another collector takes the message first or the server is stopping; call again."
    )


class WaitFieldExtension(BoundedSecondsFieldExtension):
    """The body's ``wait``, which only a lease takes (a collect's ``wait`` is a query parameter)."""

    target_class = "restapi.serializers.WaitField"
    priority = 1

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return {**super().map_serializer_field(auto_schema, direction), "description": wait_description("it leases")}


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Every request body refuses fields it does not know."""

    target_class = "restapi.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return {**auto_schema._map_basic_serializer(self.target, direction), "additionalProperties": False}


class BearerTokenAuthenticationExtension(OpenApiAuthenticationExtension):
    """The token of a claimed inbox, in ``Authorization: Bearer <token>``."""

    target_class = "restapi.authentication.BearerTokenAuthentication"
    name = "inboxToken"

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list]]:
        # Reads take a token only for claimed inboxes; managing a claim always needs one.
        permissions = auto_schema.view.permission_classes
        if PresentsBearerToken in permissions or AllowAny in permissions:  # AllowAny adds the {} itself
            return [{self.name: []}]
        return [{self.name: []}, {}]

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "The token that POST /inboxes returned when the inbox was claimed (or the latest "
                "POST /inboxes/{username}/token). Only the inbox's current token is accepted."
            ),
        }


# Error bodies. DRF's exception handler and restapi.middleware produce them;
# these serializers only describe their shape.


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


class FieldErrorsSerializerExtension(OpenApiSerializerExtension):
    target_class = "restapi.schema.FieldErrorsSerializer"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {
            **schema,
            "minProperties": 1,
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }


# A 400 body is either field errors or, for a body that is not a JSON object, a detail.
BAD_REQUEST = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[FieldErrorsSerializer, DetailSerializer],
    resource_type_field_name=None,
)


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


def _header(name: str, *codes: int, description: str, enum: list[str] | None = None) -> OpenApiParameter:
    """A response header sent with the answers of ``codes``."""
    kind = OpenApiTypes.INT if name == "Retry-After" else OpenApiTypes.STR
    return OpenApiParameter(
        name, kind, OpenApiParameter.HEADER, response=list(codes), enum=enum, description=description
    )


def _retry_after(*codes: int, why: str) -> OpenApiParameter:
    return _header("Retry-After", *codes, description=f"Seconds to wait before trying again ({why}).")


def _no_store(*codes: int, why: str) -> OpenApiParameter:
    return _header("Cache-Control", *codes, enum=["no-store"], description=f"Always no-store: {why}.")


def _detail(description: str) -> OpenApiResponse:
    """An error answered with a ``detail`` only."""
    return OpenApiResponse(DetailSerializer, description=description)


def _path(name: str, schema: Any, description: str | None = None) -> OpenApiParameter:
    return OpenApiParameter(name, schema, OpenApiParameter.PATH, description=description)


NOT_ACCEPTABLE = _detail(
    "The Accept header names an API version this service does not speak, or a media type it "
    "cannot produce. Version 1 is the default; ask for it with `Accept: application/json; version=1`."
)
UNAVAILABLE = OpenApiResponse(
    RequestIdDetailSerializer,
    description="The message store cannot be reached; nothing was changed. Retry after `Retry-After` seconds.",
)
UNAUTHORIZED = _detail(
    "The inbox is claimed and the request carries no token, or not its current one "
    "(a rotated token, another inbox's token, or one from before a release)."
)
SPECULATIVE = _detail(
    "The request announced a prefetch or preview (`Sec-Purpose: prefetch`, `Purpose: prefetch`, "
    "`X-Moz: prefetch` or `X-Purpose: preview`): nothing is read or changed. HEAD is refused with 405."
)
READ_THROTTLED = _detail("Too many reads from this client (CHAT_READ_THROTTLE_RATE); see `Retry-After`.")
TOO_MANY = _detail("Too many requests from this client; see `Retry-After`. Shared with POST /chat.")
NO_INBOX = _detail("The path has no username, or the username contains /.")
BAD_USERNAME = OpenApiResponse(FieldErrorsSerializer, description="The username breaks the username rule.")

DATABASE_RETRY_AFTER = _retry_after(503, why="the message store is unavailable")
READ_RETRY_AFTER = _retry_after(429, why="the client is over its rate of reads")
CLAIMS_RETRY_AFTER = _retry_after(429, why="the client is over its rate, which claims share with sends")
WWW_AUTHENTICATE_401 = _header(
    "WWW-Authenticate",
    401,
    enum=[CHALLENGE],
    description="The Bearer challenge: send the inbox's token as `Authorization: Bearer <token>`.",
)
WWW_AUTHENTICATE_404 = _header(
    "WWW-Authenticate",
    404,
    enum=[CHALLENGE],
    description="A token may change the answer: messages of claimed inboxes are shown only with theirs.",
)
USERNAME = _path("username", username_schema())


def _body_errors(bad_request: str, examples: list[OpenApiExample] | None = None) -> dict[int, OpenApiResponse]:
    """What every endpoint that takes a JSON body answers when the body or the store fails."""
    return {
        400: OpenApiResponse(BAD_REQUEST, description=bad_request, examples=examples),
        406: NOT_ACCEPTABLE,
        413: _detail("The body is larger than the limit (64 KiB by default)."),
        415: _detail("The body is not sent as application/json."),
        503: UNAVAILABLE,
    }


API_ROOT = {
    "summary": "Describe the service and link to its endpoints",
    "description": "A browser asking for text/html gets the web page instead.",
    # The page is for people; the schema describes what API clients get.
    "responses": {(200, "application/json"): ApiRootSerializer, (406, "application/json"): NOT_ACCEPTABLE},
    "parameters": [OpenApiParameter("format", exclude=True)],
}

SEND = {
    "summary": "Send a message",
    "request": MessageCreateSerializer,
    "responses": {
        201: OpenApiResponse(CreatedSerializer, description="Stored for good: the message is committed."),
        **_body_errors(
            "A field is invalid or unknown (each one named, with what is wrong), or the body is not a JSON object.",
            examples=[
                OpenApiExample(
                    "Invalid fields",
                    value={
                        "username": [UsernameField.default_error_messages["invalid"]],
                        "timout": ["Unknown field; this endpoint takes username, text, timeout."],
                    },
                    status_codes=["400"],
                ),
                OpenApiExample(
                    "Not a JSON object",
                    value={"detail": "JSON parse error - Expecting value: line 1 column 1 (char 0)"},
                    status_codes=["400"],
                ),
            ],
        ),
        429: _detail("Too many messages from this client; see `Retry-After`."),
    },
    "parameters": [
        _header("Location", 201, description="The new message's path, /chat/{id}."),
        _retry_after(429, why="the client is over its rate of messages"),
        DATABASE_RETRY_AFTER,
    ],
}

READ = {
    "summary": "Read one message by id",
    "description": (
        "Expired and live messages alike, until the retention period purges expired ones. "
        "Reading does not expire a message. A message of a claimed inbox is shown only with that "
        "inbox's current token; a message of an open inbox needs none."
    ),
    "parameters": [
        WWW_AUTHENTICATE_404,
        _path("message_id", {"type": "integer", "minimum": 0}, "The id that POST /chat returned."),
        READ_RETRY_AFTER,
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        200: OpenApiResponse(MessageSerializer, description="The message, with its expiration date in UTC."),
        403: SPECULATIVE,
        404: _detail(
            "No message has this id, it was purged, or it belongs to a claimed inbox and the request "
            "does not carry that inbox's current token: the answer is the same, so that nobody else "
            "learns whether the id exists."
        ),
        406: NOT_ACCEPTABLE,
        429: READ_THROTTLED,
        503: UNAVAILABLE,
    },
}

COLLECT = {
    "summary": "Collect a username's inbox",
    "description": (
        "Every live message for the username, oldest first. **Collecting expires what it returns**: "
        "each message is handed out once, and its expiration date becomes the time of this read. "
        "An unknown username is an empty inbox. Messages held by a lease are not collected. "
        "A claimed inbox is collected only with its current token."
    ),
    "parameters": [
        WWW_AUTHENTICATE_401,
        USERNAME,
        OpenApiParameter(
            "wait",
            {
                "type": "string",
                "pattern": f"^0*{decimal_up_to(settings.CHAT['MAX_WAIT'])}$",
                "maxLength": TIMEOUT_MAX_DIGITS,
            },
            OpenApiParameter.QUERY,
            description=wait_description("it collects"),
        ),
        _no_store(200, why="a cached answer would hand the same messages out twice"),
        _header(
            "X-More-Messages",
            200,
            enum=["true", "false"],
            description="true when more live messages are waiting than one collection hands out; collect again.",
        ),
        READ_RETRY_AFTER,
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        200: OpenApiResponse(
            CollectedMessageSerializer(many=True),
            description="The collected messages, now expired; [] when there are none.",
        ),
        400: OpenApiResponse(FieldErrorsSerializer, description="The username or wait is invalid."),
        401: UNAUTHORIZED,
        403: SPECULATIVE,
        404: NO_INBOX,
        406: NOT_ACCEPTABLE,
        429: READ_THROTTLED,
        503: UNAVAILABLE,
    },
}

_SHOWN_ONCE = (
    "The token is shown in this answer only (it is stored as a hash and cannot be shown again): "
    "keep it where you keep passwords. `Cache-Control: no-store`."
)
TOKEN_NO_STORE = _no_store(200, 201, why="the token must not be kept by any cache")

CLAIM = {
    "summary": "Claim an inbox",
    "description": (
        "From now on only the holder of the returned token can collect the inbox or read its messages by id, "
        "those sent before the claim included. Anyone can still send to it. " + _SHOWN_ONCE
    ),
    "request": ClaimSerializer,
    "auth": [],
    "parameters": [
        TOKEN_NO_STORE,
        _header("Location", 201, description="The claimed inbox, /inboxes/{username}: DELETE releases it."),
        CLAIMS_RETRY_AFTER,
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        201: OpenApiResponse(ClaimedInboxSerializer, description="Claimed. " + _SHOWN_ONCE),
        **_body_errors("The username is invalid, or a field is unknown, or the body is not a JSON object."),
        409: _detail("The inbox is claimed already."),
        429: TOO_MANY,
    },
}

# What rotating and releasing a claimed inbox answer besides their success.
_MANAGED_INBOX_ERRORS = {
    400: BAD_USERNAME,
    401: UNAUTHORIZED,
    404: _detail("The inbox is not claimed (or the path has no username, or it contains /)."),
    406: NOT_ACCEPTABLE,
    429: TOO_MANY,
    503: UNAVAILABLE,
}

ROTATE = {
    "summary": "Replace a claimed inbox's token",
    "description": (
        "Takes the current token and returns a new one; the old token stops working at once, on every server. "
        + _SHOWN_ONCE
    ),
    "request": None,
    "parameters": [USERNAME, TOKEN_NO_STORE, WWW_AUTHENTICATE_401, CLAIMS_RETRY_AFTER, DATABASE_RETRY_AFTER],
    "responses": {
        200: OpenApiResponse(ClaimedInboxSerializer, description="The new token. " + _SHOWN_ONCE),
        **_MANAGED_INBOX_ERRORS,
    },
}

RELEASE = {
    "summary": "Release a claimed inbox",
    "description": (
        "Takes the current token. The inbox's messages, live and expired, are erased in the same "
        "transaction that opens the name again, so none of them is ever shown to anyone else; "
        "anyone may claim the name afterwards."
    ),
    "parameters": [USERNAME, WWW_AUTHENTICATE_401, CLAIMS_RETRY_AFTER, DATABASE_RETRY_AFTER],
    "responses": {
        204: OpenApiResponse(description="Released: the messages are erased and the name is open."),
        **_MANAGED_INBOX_ERRORS,
    },
}

LEASE = {
    "summary": "Lease an inbox's messages until acknowledged",
    "description": (
        "Hands out the username's live messages, oldest first, **without expiring them**: they are hidden "
        "from every collect and every other lease until the lease ends. Acknowledge the lease "
        "(DELETE .../leases/{lease}) once the messages are safe; a lease that ends unacknowledged returns "
        "them to the inbox, except those whose own expiration date passed meanwhile."
    ),
    "request": LeaseRequestSerializer,
    "parameters": [
        WWW_AUTHENTICATE_401,
        USERNAME,
        _header("Location", 201, description="The lease's path, to acknowledge it with DELETE."),
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        201: OpenApiResponse(LeaseSerializer, description="At least one message is leased."),
        200: OpenApiResponse(LeaseSerializer, description='Nothing to lease: {"lease": null, "messages": []}.'),
        401: UNAUTHORIZED,
        **_body_errors("A field is invalid or unknown, or the body is not a JSON object."),
        404: NO_INBOX,
    },
}

ACKNOWLEDGE = {
    "summary": "Acknowledge a lease",
    "description": "Collects the lease's messages exactly as a collect does: each one expires now.",
    "parameters": [
        WWW_AUTHENTICATE_401,
        USERNAME,
        _path("lease", OpenApiTypes.STR, "The id the lease answered."),
        DATABASE_RETRY_AFTER,
    ],
    "responses": {
        204: OpenApiResponse(description="Acknowledged: the messages are collected."),
        400: BAD_USERNAME,
        401: UNAUTHORIZED,
        404: _detail("No such lease was given out for this inbox."),
        406: NOT_ACCEPTABLE,
        409: _detail("The lease has ended or was acknowledged already."),
        503: UNAVAILABLE,
    },
}


def without_trailing_slash(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """Name each path as clients should write it: without the optional trailing slash."""
    return [(path.removesuffix("/") or "/", *rest) for path, *rest in endpoints]
