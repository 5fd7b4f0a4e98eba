"""The claims store: one winner among concurrent claims and rotations; a release takes its messages along."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from restapi import services
from restapi.models import Inbox, Message
from restapi.storage import inboxes


def _at_once(count: int, action: Callable[[int], bool]) -> list[bool]:
    """Run ``action(slot)`` in ``count`` threads, each with its own connection, released at the same moment."""
    start = threading.Barrier(count)
    results: list[bool | None] = [None] * count
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            start.wait()
            results[slot] = action(slot)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_claims_of_one_name_exactly_one_wins():
    won = _at_once(8, lambda slot: inboxes.insert_claim(username="ann", token_hash=f"{slot:064x}"))

    assert won.count(True) == 1
    assert Inbox.objects.get(username="ann").token_hash == f"{won.index(True):064x}"


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_rotations_from_one_token_exactly_one_wins():
    inboxes.insert_claim(username="ann", token_hash="0" * 64)

    won = _at_once(
        8, lambda slot: inboxes.replace_token_hash(username="ann", old_hash="0" * 64, new_hash=f"{slot + 1:064x}")
    )

    assert won.count(True) == 1
    assert Inbox.objects.get(username="ann").token_hash == f"{won.index(True) + 1:064x}"


@pytest.mark.django_db
def test_the_claim_time_is_the_database_clock():
    inboxes.insert_claim(username="ann", token_hash="0" * 64)
    message = services.create_message(username="ann", text="hi", timeout=0)

    claimed_at = Inbox.objects.get(username="ann").claimed_at
    assert abs((claimed_at - message.expiration_date).total_seconds()) < 5


@pytest.mark.django_db
def test_a_release_erases_the_inboxs_messages_with_the_claim():
    inboxes.insert_claim(username="ann", token_hash="0" * 64)
    services.create_message(username="ann", text="live", timeout=60)
    services.create_message(username="ann", text="expired", timeout=0)
    kept = services.create_message(username="bob", text="other", timeout=60)

    assert inboxes.delete_claim(username="ann", token_hash="0" * 64)

    assert not Inbox.objects.exists()
    assert list(Message.objects.values_list("id", flat=True)) == [kept.id]


@pytest.mark.django_db
def test_a_release_with_a_stale_digest_changes_nothing():
    inboxes.insert_claim(username="ann", token_hash="1" * 64)
    services.create_message(username="ann", text="live", timeout=60)

    assert not inboxes.delete_claim(username="ann", token_hash="0" * 64)

    assert Inbox.objects.filter(username="ann").exists()
    assert Message.objects.filter(username="ann").count() == 1
