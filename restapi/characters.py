"""
What the API counts as a visible character, and the one definition of a username.

A text or a name must show something on a screen: a character that draws
nothing (a zero-width space, a byte-order mark, a Hangul filler, the blank
braille pattern) cannot make a text non-blank, and cannot be part of a name,
where it would make two inboxes that look identical.
"""

from __future__ import annotations

import re
import unicodedata

USERNAME_MAX_LENGTH = 150
# Besides letters and digits, the characters Django accepts in its own usernames.
USERNAME_PUNCTUATION = frozenset("@.+-_")

# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt),
# which Python's unicodedata does not expose: characters a renderer draws as
# nothing. Besides the format controls it holds the Hangul fillers, which are
# letters, and the variation selectors and the combining grapheme joiner, which
# are marks, so the categories alone would let them into a name.
_DEFAULT_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# Not default-ignorable, yet drawn as an empty cell: a common way to fake a blank.
BRAILLE_PATTERN_BLANK = "\u2800"
_DEFAULT_IGNORABLE = frozenset(code for first, last in _DEFAULT_IGNORABLE_RANGES for code in range(first, last + 1))
# What _is_username_form accepts of ASCII, which NFKC leaves as it is: a name
# is checked character by character only when it is not plain ASCII.
_ASCII_USERNAME = re.compile(r"[A-Za-z0-9@.+_-]*")


def is_invisible(character: str) -> bool:
    """Whether ``character`` draws nothing: white space, a control, or a default-ignorable code point."""
    if character.isspace() or character == BRAILLE_PATTERN_BLANK or unicodedata.category(character) == "Cc":
        return True
    return ord(character) in _DEFAULT_IGNORABLE


def is_blank(text: str) -> bool:
    """Whether ``text`` has no visible character at all."""
    return all(is_invisible(character) for character in text)


def _is_username_form(name: str) -> bool:
    """Letters (each with any marks that belong to it), digits and @ . + - _, nothing invisible."""
    if name.isascii():
        return _ASCII_USERNAME.fullmatch(name) is not None
    after_letter = False
    for character in name:
        if is_invisible(character):
            return False
        category = unicodedata.category(character)[0]
        if category == "M":
            # A mark belongs to the letter before it (and to that letter's other marks).
            if not after_letter:
                return False
        elif category == "L":
            after_letter = True
        elif category == "N" or character in USERNAME_PUNCTUATION:
            after_letter = False
        else:
            return False
    return True


def normalise_username(raw: str) -> str | None:
    """
    The inbox that ``raw`` names, or None if it is not a username.

    Names are compared in Unicode normalisation form NFKC, as Django compares
    its own usernames: a name in fullwidth letters, a name written with the Kelvin
    sign or the ``ﬁ`` ligature, and a decomposed Hangul or Vietnamese name are
    the same inbox as their plain forms. The rule holds for the name as sent
    and for its normalised form, each 1 to ``USERNAME_MAX_LENGTH`` characters.
    Case is kept: ``Ann`` and ``ann`` are two inboxes.
    """
    if not 1 <= len(raw) <= USERNAME_MAX_LENGTH or not _is_username_form(raw):
        return None
    name = unicodedata.normalize("NFKC", raw)
    if len(name) > USERNAME_MAX_LENGTH or not _is_username_form(name):
        return None
    return name
