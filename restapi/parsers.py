"""The JSON body parser: DRF's, with every refusal worded in terms of the request rather than of Python."""

from __future__ import annotations

import codecs
import json
from typing import Any, NoReturn

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No field takes a number anywhere near this long; the bound keeps int() cheap
# and well inside Python's own limit on integer conversion.
MAX_NUMBER_DIGITS = 1000


def _refuse_constant(name: str) -> NoReturn:
    raise ParseError(f"JSON parse error - {name} is not a JSON number.")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ParseError(
            f"JSON parse error - a number in the body has {len(digits.lstrip('-'))} digits; "
            f"the most any number may have is {MAX_NUMBER_DIGITS}."
        )
    return int(digits)


class StrictJSONParser(JSONParser):
    """
    A JSON object in the charset of the Content-Type (UTF-8 by default).

    NaN and Infinity, which Python's json module would accept, are refused as
    the JSON standard refuses them; a pathologically deep document is a 400
    like any other malformed one.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        charset = codecs.lookup(encoding).name.upper()
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"The request body is not valid {charset} text (at byte {exc.start}).") from None
        try:
            return json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
        except json.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
