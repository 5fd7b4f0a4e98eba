"""The character rules' shortcuts agree with the rules they shorten."""

from __future__ import annotations

import string
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from restapi import characters


def _by_character(name: str) -> bool:
    """The username form decided character by character, as for any non-ASCII name."""
    after_letter = False
    for character in name:
        category = unicodedata.category(character)[0]
        if characters.is_invisible(character):
            return False
        if category == "M" and not after_letter:
            return False
        if category not in "LMN" and character not in characters.USERNAME_PUNCTUATION:
            return False
        after_letter = category in "LM" if category == "M" else category == "L"
    return True


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_an_ascii_name_is_judged_as_character_by_character(name: str) -> None:
    assert characters.normalise_username(name) == (name if name and _by_character(name) else None)


def test_every_ascii_character_is_judged_alike() -> None:
    for character in map(chr, range(128)):
        expected = character in string.ascii_letters + string.digits + "@.+-_"
        assert (characters.normalise_username(character) is not None) is expected, repr(character)


@given(st.integers(min_value=0, max_value=0x10FFFF))
def test_invisible_is_the_listed_ranges_and_the_blank_kinds(code: int) -> None:
    character = chr(code)
    in_ranges = any(first <= code <= last for first, last in characters._DEFAULT_IGNORABLE_RANGES)
    blank_kind = (
        character.isspace() or character == characters.BRAILLE_PATTERN_BLANK or unicodedata.category(character) == "Cc"
    )
    assert characters.is_invisible(character) is (in_ranges or blank_kind)
