"""
The PostgreSQL primary dies under load, with one of etcd's three members already
dead: Patroni promotes the synchronous standby through the two members left,
and the app hosts follow.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from tests.cluster.conftest import on_host, stored_ids, wait_for
from tests.cluster.load import Load

# How long after the standby's promotion requests may still fail: each app host's
# connections find the new primary on their next use.
RECOVERY_SECONDS = 15
# etcd's default election timeout is one second; a loaded machine may need a few.
ETCD_ELECTION_SECONDS = 15


def gunicorn_masters(net) -> dict[str, int]:
    return {app.name: net.pid_of(app, "gunicorn") for app in net.APPS}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_primary_killed_under_load_fails_over_without_losing_an_acknowledged_message(net, addresses):
    old = net.primary()
    (standby,) = [db for db in net.DBS if db != old]
    masters = gunicorn_masters(net)
    # The member whose loss also costs etcd an election: the hardest one to lose.
    etcd_lost = net.etcd_leader()
    assert etcd_lost is not None, "etcd has no leader"
    probes = iter(addresses(40))

    def serves_writes(app) -> bool:
        body = {"username": "probe", "text": "after failover"}
        return on_host(app, "POST", "/chat", json_body=body, source_address=next(probes)).status == 201

    # Failed sends spend the send budget too, and fail fast while there is no
    # primary: enough addresses that no client comes back to one it has used up.
    with Load(net.lb_url(), addresses(400), threads=6, prefix="pgkill", seconds=90) as load:
        time.sleep(3)
        etcd_killed_at = time.monotonic()
        assert net.kill_host_processes(etcd_lost)
        etcd_elected = wait_for(
            "another etcd leader", lambda: net.etcd_leader() not in (None, etcd_lost), timeout=ETCD_ELECTION_SECONDS
        )
        # Longer than Patroni's retry_timeout: a primary that could not reach
        # its store would have demoted itself by now.
        time.sleep(net.PATRONI_RETRY_TIMEOUT + 1)
        assert net.patroni_role(old) == "primary"
        killed_at = time.monotonic()
        # The whole host dies: Patroni and PostgreSQL alike.
        assert net.kill_host_processes(old)
        promoted_after = wait_for("standby promoted", lambda: net.patroni_role(standby) == "primary", timeout=45)
        # The lock was taken with the lost member still down.
        assert not net.etcd_healthy(etcd_lost)
        for app in net.APPS:
            wait_for(f"{app.name} writing to the new primary", lambda a=app: serves_writes(a), timeout=30)
        time.sleep(3)
    record = load.record

    try:
        since_kill = [o for o in record.outcomes if o.finished > killed_at]
        sends = [o for o in since_kill if o.operation == "send"]
        failed = [o for o in since_kill if o.status not in (200, 201)]
        # The unavailability window: until the last request of any kind failed. Each
        # worker thread finds its connection gone on its first request after the
        # switch, so a read or a collect can fail a little after the last send did.
        window = max((o.finished for o in failed), default=killed_at) - killed_at
        held = max(o.finished - max(o.started, killed_at) for o in sends if o.status == 201)
        print(
            f"etcd member {etcd_lost.name} (its leader) killed, another leader {etcd_elected:.1f}s later; "
            f"standby promoted {promoted_after:.1f}s after the primary's kill; sends since the kill: "
            f"{dict(Counter(o.status for o in sends))}; failures since the kill: "
            f"{dict(Counter((o.operation, o.status) for o in failed))}; the last {window:.1f}s after the kill; "
            f"the longest a successful send waited: {held:.1f}s"
        )
        # Losing one etcd member, its leader at that, cost no request anything.
        assert not [o for o in record.failures() if etcd_killed_at < o.finished < killed_at]
        # Every request that failed during the switch was told to come back, none got a 500.
        for outcome in record.failures():
            assert outcome.status == 503, outcome
            assert outcome.answer.headers.get("retry-after"), outcome
        assert record.statuses("send")[201] > 20
        # Acknowledged on the old primary, replicated synchronously: all of them on the new one.
        assert stored_ids(net, list(record.acknowledged)) == set(record.acknowledged)
        # The app hosts reconnected by themselves: the same gunicorn masters serve.
        assert gunicorn_masters(net) == masters
        assert all(alive(pid) for pid in masters.values())
        # Service came back by itself soon after the promotion, for every kind of request.
        assert window < promoted_after + RECOVERY_SECONDS
        after = [o for o in record.outcomes if o.started > killed_at + window]
        assert {o.operation for o in after if o.status in (200, 201)} == {"send", "read", "collect"}
    finally:
        # The etcd member comes back and rejoins the other two; the old primary's
        # host comes back and follows the new primary.
        net.start_etcd_member(etcd_lost)
        net.start_patroni(old)
        wait_for(f"{etcd_lost.name} back in etcd", lambda: net.etcd_healthy(etcd_lost), timeout=30)
        wait_for(f"{old.name} back as synchronous standby", lambda: net.is_sync_standby(old), timeout=60)
