"""An app host that dies under load: nginx routes around it, and loses or repeats nothing."""

from __future__ import annotations

import re
import time

from tests.cluster.conftest import stored_ids, wait_for
from tests.cluster.load import Load


def access_log(net) -> list[str]:
    return (net.STATE_DIR / "lb" / "access.log").read_text().splitlines()


def passed_to_two_hosts(lines: list[str]) -> list[str]:
    """Collects in nginx's access log that went to more than one app host."""
    return [line for line in lines if "/chats/" in line and re.search(r"upstream=\S+, ", line)]


def test_an_app_host_killed_under_load_loses_and_replays_nothing(net, addresses):
    victim = net.APPS[0]
    logged_before = len(access_log(net))
    with Load(net.lb_url(), addresses(60), threads=8, prefix="hostkill", seconds=9) as load:
        time.sleep(3)
        killed_at = time.monotonic()
        assert net.kill_host_processes(victim, command_contains="gunicorn")
    record = load.record
    try:
        assert record.statuses("send")[201] > 10
        # Only requests in flight on the victim failed, as requests whose fate is unknown
        # (502, or cut off mid-answer) or refused as unavailable (503 with Retry-After).
        for outcome in record.failures():
            assert outcome.started < killed_at + 1, outcome
            assert outcome.status in (0, 502, 503), outcome
            assert outcome.status != 503 or outcome.answer.headers.get("retry-after"), outcome
        assert stored_ids(net, list(record.acknowledged)) == set(record.acknowledged)
        assert passed_to_two_hosts(access_log(net)[logged_before:]) == []
    finally:
        net.start_app(victim)
        wait_for(f"{victim.name} back", lambda: net.app_ready(victim), timeout=30)
