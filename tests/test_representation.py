"""The response serializers write their dicts directly; these tests hold them to their declared fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from rest_framework import serializers

from restapi.serializers import CollectedMessageSerializer, MessageSerializer
from restapi.storage import StoredMessage

MESSAGES = [
    StoredMessage(1, "ann", "hello", datetime(2026, 11, 28, 22, 7, 8, 123456, tzinfo=UTC)),
    # The hot store hands back whatever offset was stored; the answer is still UTC.
    StoredMessage(2**63 - 1, "b.o+b@x-y_z", "ünïcode ✓", datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))),
    StoredMessage(3, "c" * 150, "x" * 512, datetime(2030, 6, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=-9)))),
]


@pytest.mark.parametrize("serializer_class", [MessageSerializer, CollectedMessageSerializer])
@pytest.mark.parametrize("message", MESSAGES)
def test_direct_representation_equals_the_declared_fields(serializer_class, message: StoredMessage) -> None:
    serializer = serializer_class(message)
    by_fields = serializers.Serializer.to_representation(serializer, message)
    assert serializer.data == by_fields


def test_expiration_date_is_utc_with_microseconds_and_z() -> None:
    assert MessageSerializer(MESSAGES[1]).data["expiration_date"] == "2025-12-31T23:00:00.000000Z"


def test_a_collection_keeps_its_order() -> None:
    data = CollectedMessageSerializer(MESSAGES, many=True).data
    assert [item["id"] for item in data] == [1, 2**63 - 1, 3]
