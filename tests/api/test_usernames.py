"""
Usernames: letters of every script with their marks, one inbox per name however
it is encoded, and nothing invisible. Sending and collecting share the rule.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest

from restapi.models import Message


def collect(api, username: str):
    return api.get("/chats/" + quote(username, safe=""))


NAMES_WITH_MARKS = [
    "राहुल",  # Hindi: vowel signs after consonants
    "தமிழ்",  # Tamil: a virama
    "সৌরভ",  # Bengali
    "สมศักดิ์",  # Thai: vowel and tone marks
    "مُحَمَّد",  # Arabic with vowel marks
    "שָׁלוֹם",  # Hebrew with niqqud
    unicodedata.normalize("NFD", "Nguyễn"),  # Vietnamese, decomposed
    "Zoë",
]


@pytest.mark.parametrize("username", NAMES_WITH_MARKS)
def test_names_written_with_combining_marks_are_accepted_and_collected(api, send, username):
    response = send(username=username, text="hello")

    assert response.status_code == 201, response.json()
    stored = Message.objects.get(pk=response.json()["id"]).username
    assert stored == unicodedata.normalize("NFKC", username)
    assert [m["text"] for m in collect(api, username).json()] == ["hello"]


@pytest.mark.parametrize(
    ("look_alike", "plain"),
    [
        ("\uff41\uff4e\uff4e", "ann"),  # fullwidth letters
        ("\u212aelvin", "Kelvin"),  # the Kelvin sign
        ("\ufb01sh", "fish"),  # the fi ligature
        ("\u1112\u1161\u11ab", "\ud55c"),  # Hangul: conjoining jamo and the precomposed syllable
        (unicodedata.normalize("NFD", "Nguyễn"), "Nguyễn"),
    ],
)
def test_look_alike_spellings_are_one_inbox(api, send, look_alike, plain):
    send(username=look_alike, text="to the look-alike")
    send(username=plain, text="to the plain name")

    assert Message.objects.filter(username=plain).count() == 2
    assert [m["text"] for m in collect(api, look_alike).json()] == ["to the look-alike", "to the plain name"]
    assert collect(api, plain).json() == []


def test_the_read_shows_the_name_as_its_inbox_is_called(api, send):
    message_id = send(username="\uff41\uff4e\uff4e", text="hi").json()["id"]

    assert api.get(f"/chat/{message_id}").json()["username"] == "ann"


def test_inboxes_are_case_sensitive(api, send):
    send(username="Ann", text="for Ann")
    send(username="ann", text="for ann")

    assert [m["text"] for m in collect(api, "Ann").json()] == ["for Ann"]
    assert [m["text"] for m in collect(api, "ann").json()] == ["for ann"]


INVISIBLE_OR_MISPLACED = [
    "\u3164",  # Hangul filler, a letter that draws nothing
    "\u115f",
    "\u1160",
    "\uffa0",
    "\u2800",  # braille pattern blank
    "ann\u200b",  # zero-width space
    "\ufeffann",  # byte-order mark
    "an\u200dn",  # zero-width joiner
    "ann\u00ad",  # soft hyphen
    "a\u034fnn",  # combining grapheme joiner
    "ann\ufe0f",  # variation selector
    "ann\u202e",  # right-to-left override
    "ann\U000e0041",  # tag character
    "\u0301ann",  # a mark with no letter before it
    "1\u20e3",  # a mark on a digit
    "\ufdfa",  # a letter whose normal form holds spaces
    "\ufb01" * 76,  # 76 characters as sent, 152 once normalised
]


@pytest.mark.parametrize("username", INVISIBLE_OR_MISPLACED)
def test_invisible_characters_and_stray_marks_are_refused_when_sending(send, username):
    response = send(username=username, text="hi")

    assert response.status_code == 400
    assert "username" in response.json()
    assert not Message.objects.exists()


@pytest.mark.parametrize("username", INVISIBLE_OR_MISPLACED)
def test_invisible_characters_and_stray_marks_are_refused_when_collecting(api, db, username):
    response = collect(api, username)

    assert response.status_code == 400
    assert "username" in response.json()


def test_a_name_as_long_as_the_limit_once_normalised_is_accepted(api, send):
    response = send(username="\ufb01" * 75, text="hi")

    assert response.status_code == 201
    assert Message.objects.get(pk=response.json()["id"]).username == "fi" * 75
