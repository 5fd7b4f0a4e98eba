"""
Collects behind the shipped nginx site while gunicorn workers are killed.

A collect hands its messages out exactly once. nginx must never resend one to
another worker after the first attempt may already have collected: the second
attempt would answer an authoritative, wrong ``[]``. A client whose collect's
fate is unknown gets an error instead, so it knows to look again.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from restapi.models import Message
from tests.deploy.conftest import deployed
from tests.hardening.http import call
from tests.hardening.load import CONNECTION_LOST
from tests.support.processes import wait_until

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

KILLS = 10


@dataclass
class Recipient:
    username: str
    sent: set[int] = field(default_factory=set)
    delivered: list[int] = field(default_factory=list)
    failed_collects: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def run(recipient: Recipient, url: str, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        # A send cut by a kill may or may not be stored; only what was acknowledged is counted.
        with contextlib.suppress(*CONNECTION_LOST):
            answer = call(url, "POST", "/chat", json_body={"username": recipient.username, "text": f"m{n}"})
            if answer.status == 201:
                recipient.sent.add(answer.json()["id"])
        if n % 2:
            continue
        try:
            answer = call(url, "GET", f"/chats/{recipient.username}")
        except CONNECTION_LOST as exc:
            # Cut after nginx had started the answer: an error the client sees, too.
            recipient.failed_collects.append(repr(exc))
            continue
        if answer.status == 200:
            recipient.delivered.extend(item["id"] for item in answer.json())
        elif answer.status == 502:
            recipient.failed_collects.append(answer.json()["detail"])
        else:
            recipient.unexpected.append(f"{answer.status} {answer.body[:200]!r}")


def test_no_collected_message_is_lost_behind_an_answer_of_success(nginx: str, tmp_path: Path) -> None:
    recipients = [Recipient(f"kill{n}") for n in range(8)]
    stop = threading.Event()
    with deployed(nginx, tmp_path, workers=2) as (service, site):
        url = f"http://127.0.0.1:{site.port}"
        threads = [threading.Thread(target=run, args=(r, url, stop)) for r in recipients]
        for thread in threads:
            thread.start()
        try:
            for _ in range(KILLS):
                # Each kill waits for the load to have made progress since the last one:
                # on a busy machine a new worker may need seconds before it serves at all.
                delivered = sum(len(r.delivered) for r in recipients)
                wait_until(
                    lambda delivered=delivered: sum(len(r.delivered) for r in recipients) >= delivered + 3,
                    what="collects delivering messages between kills",
                )
                time.sleep(random.uniform(0, 0.5))
                os.kill(random.choice(service.worker_pids()), signal.SIGKILL)
            time.sleep(1)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

    for recipient in recipients:
        assert recipient.unexpected == [], recipient.unexpected
        inbox = set(
            Message.objects.filter(username=recipient.username, collected_at__isnull=True).values_list("id", flat=True)
        )
        delivered = set(recipient.delivered)
        assert len(delivered) == len(recipient.delivered), "a message was handed out twice"
        vanished = recipient.sent - delivered - inbox
        # Messages collected by a request whose answer never arrived: only ever
        # behind an error the client saw, never behind a 200.
        if vanished:
            assert recipient.failed_collects, f"{recipient.username}: {sorted(vanished)} collected, never delivered"
    # The load ran throughout (how much depends on the machine, not on the site).
    assert sum(len(r.delivered) for r in recipients) > 20
