"""
How the custom fields, the strict bodies and the bearer token appear in the API schema.

The rules are read from the same constants and settings the serializers
enforce, at the time the schema is built, so the description follows the code.
drf-spectacular finds these extensions once this module is imported (the
package's ``__init__`` does).
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
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from restapi.authentication import PresentsBearerToken
from restapi.characters import is_invisible
from restapi.serializers import TIMEOUT_MAX_DIGITS, USERNAME_MAX_LENGTH

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


def digits_within(minimum: int, maximum: int) -> dict[str, Any]:
    """A string of digits whose value is within the bounds (the bounds in use are 0 or 1 to a maximum)."""
    return {
        "type": "string",
        "pattern": f"^{'(?!0*$)' if minimum else ''}0*{decimal_up_to(maximum)}$",
        "maxLength": TIMEOUT_MAX_DIGITS,
    }


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
                digits_within(field.minimum, field.maximum),
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


class FieldErrorsSerializerExtension(OpenApiSerializerExtension):
    target_class = "restapi.serializers.FieldErrorsSerializer"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {
            **schema,
            "minProperties": 1,
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
