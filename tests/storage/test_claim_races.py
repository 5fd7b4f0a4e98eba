"""
A claim, rotation or release that commits between a request's access check and
its collect or lease: the statement itself finds that the claim changed and
hands nothing out.

Each test runs the two sides on two connections. The collect or lease is held
at its last step before the statement (the ``recipient_gone`` question, or the
lease's own statement reached through the same check) while the other side
commits, which is the interleaving a loaded server produces by chance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from restapi import selectors, services, views
from restapi.models import Message
from restapi.selectors import InboxAccess
from restapi.storage import messages
from tests.storage.test_messages import insert

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE = 60


@contextmanager
def committed_meanwhile(action: Callable[[], object]) -> Iterator[Callable[[], bool]]:
    """
    A ``recipient_gone`` hook for a collect: when the collect reaches it, ``action``
    runs to its commit on a connection of its own before the collect goes on.
    """
    reached, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_side() -> None:
        try:
            assert reached.wait(DEADLINE)
            action()
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
        finally:
            connection.close()
            done.set()

    def pause() -> bool:
        reached.set()
        assert done.wait(DEADLINE)
        return False

    thread = threading.Thread(target=other_side)
    thread.start()
    try:
        yield pause
    finally:
        reached.set()
        thread.join(DEADLINE)
    assert not errors, errors


def test_a_claim_committed_after_the_check_keeps_a_collect_without_token_out() -> None:
    message = insert(username="ann", text="for ann only", timeout=600)
    checked = selectors.authorize_inbox("ann", None)
    assert checked.access is InboxAccess.OPEN
    tokens: list[str] = []

    with committed_meanwhile(lambda: tokens.append(services.claim_inbox(username="ann"))) as pause:
        collected = services.collect_inbox(username="ann", authorization=checked, recipient_gone=pause)

    assert collected.messages == []
    # The claim's holder receives it.
    granted = selectors.authorize_inbox("ann", tokens[0])
    assert [m.id for m in services.collect_inbox(username="ann", authorization=granted).messages] == [message.id]


def test_a_rotation_committed_after_the_check_keeps_the_old_token_out() -> None:
    insert(username="ann", text="for the new token", timeout=600)
    old = selectors.authorize_inbox("ann", services.claim_inbox(username="ann"))
    assert old.access is InboxAccess.GRANTED

    with committed_meanwhile(lambda: services.rotate_inbox_token(authorization=old)) as pause:
        collected = services.collect_inbox(username="ann", authorization=old, recipient_gone=pause)

    assert collected.messages == []
    assert Message.objects.get(username="ann").collected_at is None


def test_a_lease_checks_the_claim_it_was_authorized_against() -> None:
    # A lease has no hook before its statement, so the claim commits between the
    # check and the call, on another connection, as a concurrent request's would.
    insert(username="ann", text="for ann only", timeout=600)
    checked = selectors.authorize_inbox("ann", None)
    claimer = threading.Thread(target=lambda: (services.claim_inbox(username="ann"), connection.close()))
    claimer.start()
    claimer.join(DEADLINE)

    lease = services.lease_inbox(username="ann", seconds=30, authorization=checked)

    assert (lease.token, lease.messages) == (None, [])
    assert Message.objects.get(username="ann").lease_id is None


def test_a_check_that_still_holds_collects_and_leases_as_before() -> None:
    insert(username="open", text="to anyone", timeout=600)
    insert(username="ann", text="to the holder", timeout=600)
    granted = selectors.authorize_inbox("ann", services.claim_inbox(username="ann"))

    assert (
        len(
            services.lease_inbox(
                username="open", seconds=30, authorization=selectors.authorize_inbox("open", None)
            ).messages
        )
        == 1
    )
    assert [m.text for m in services.collect_inbox(username="ann", authorization=granted).messages] == ["to the holder"]


def test_a_refused_authorization_is_never_used_to_collect() -> None:
    insert(username="ann", text="for ann only", timeout=600)
    services.claim_inbox(username="ann")
    refused = selectors.authorize_inbox("ann", None)
    assert refused.access is InboxAccess.NO_TOKEN

    with pytest.raises(services.AccessNotGranted):
        services.collect_inbox(username="ann", authorization=refused)
    with pytest.raises(services.AccessNotGranted):
        services.lease_inbox(username="ann", seconds=30, authorization=refused)
    with pytest.raises(services.AccessNotGranted):
        services.collect_inbox(username="bob", authorization=selectors.authorize_inbox("ann", None))
    assert Message.objects.get(username="ann").collected_at is None


def test_the_unchecked_statements_ignore_claims() -> None:
    # Without a decision (a management command, a test) nothing is compared.
    insert(username="ann", text="x", timeout=600)
    services.claim_inbox(username="ann")
    assert len(messages.collect_messages(username="ann", limit=10)) == 1


def _claim_once(username: str, tokens: list[str]) -> None:
    """Claim ``username`` on another connection, committed before this returns, the first time only."""
    if tokens:
        return
    claimer = threading.Thread(
        target=lambda: (tokens.append(services.claim_inbox(username=username)), connection.close())
    )
    claimer.start()
    claimer.join(DEADLINE)


def _claimed_right_after_the_check(monkeypatch: pytest.MonkeyPatch, username: str) -> list[str]:
    """Every access check of ``username`` is followed, before the request goes on, by a claim committed elsewhere."""
    tokens: list[str] = []
    check = selectors.authorize_inbox

    def check_then_claim(name: str, token: str | None) -> selectors.InboxAuthorization:
        decided = check(name, token)
        if name == username:
            _claim_once(name, tokens)
        return decided

    monkeypatch.setattr(selectors, "authorize_inbox", check_then_claim)
    return tokens


def _claimed_right_before_the_statement(monkeypatch: pytest.MonkeyPatch, username: str) -> list[str]:
    """
    A collect's last question before its statement (is the client still there?)
    is followed by a claim committed elsewhere: a collect without a token decides
    on the claim in its statement, so that is its last moment to be wrong.
    """
    tokens: list[str] = []
    monkeypatch.setattr(views, "client_has_gone", lambda request: _claim_once(username, tokens) or False)
    return tokens


@pytest.mark.parametrize("request_kind", ["collect", "lease"])
def test_through_the_api_a_claim_after_the_check_keeps_a_request_without_token_out(
    monkeypatch: pytest.MonkeyPatch, request_kind: str
) -> None:
    from rest_framework.test import APIClient

    insert(username="ann", text="for ann only", timeout=600)
    api = APIClient()

    if request_kind == "collect":
        tokens = _claimed_right_before_the_statement(monkeypatch, "ann")
        answer = api.get("/chats/ann")
        # Refused: by the time its statement ran, the inbox was claimed.
        assert answer.status_code == 401
    else:
        tokens = _claimed_right_after_the_check(monkeypatch, "ann")
        answer = api.post("/chats/ann/leases", {"seconds": 30}, format="json")
        assert answer.status_code == 200
        assert answer.json()["messages"] == []

    assert tokens, "the claim did not run"
    assert Message.objects.get().collected_at is None
