"""Data migrations, run against the rows they are written for."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps

from restapi.models import Message

pytestmark = pytest.mark.django_db


def _message(username: str, *, expires_in: float, collected: bool = False) -> Message:
    now = datetime.now(UTC)
    return Message.objects.create(
        username=username,
        text="hi",
        created_at=now,
        expiration_date=now + timedelta(seconds=expires_in),
        collected_at=now if collected else None,
    )


def test_live_messages_move_to_the_normal_form_of_their_username(api):
    migration = importlib.import_module("restapi.migrations.0003_normalise_live_usernames")
    live = _message("\uff41\uff4e\uff4e", expires_in=3600)
    decomposed = _message("\u1112\u1161\u11ab", expires_in=3600)
    expired = _message("\uff41\uff4e\uff4e", expires_in=-1)
    collected = _message("\uff41\uff4e\uff4e", expires_in=-1, collected=True)
    too_long_once_normal = _message("\ufb01" * 76, expires_in=3600)
    already_normal = _message("bob", expires_in=3600)

    migration.normalise_live_usernames(apps, None)

    names = dict(Message.objects.values_list("id", "username"))
    assert names[live.id] == "ann"
    assert names[decomposed.id] == "\ud55c"
    # Settled messages keep the name they were sent to.
    assert names[expired.id] == names[collected.id] == "\uff41\uff4e\uff4e"
    assert names[too_long_once_normal.id] == "\ufb01" * 76
    assert names[already_normal.id] == "bob"
    # The inbox is found by any spelling of the name.
    assert [m["id"] for m in api.get("/chats/ann").json()] == [live.id]
