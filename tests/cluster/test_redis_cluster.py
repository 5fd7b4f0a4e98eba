"""A Redis Cluster master dies under load: answers stay correct and quick, and its replica takes over."""

from __future__ import annotations

import time
from collections import Counter

from tests.cluster.conftest import wait_for
from tests.cluster.load import Load

# Every Redis call gives up after REDIS_TIMEOUT (0.1 s), with one retry on a cluster after
# re-reading its layout; a request waits for a few of them at most, even on a busy machine.
BOUNDED_SECONDS = 5.0


def test_a_master_killed_under_load_changes_no_answer_and_its_replica_takes_over(net, lb, addresses):
    # The node REDIS_URL names: the app hosts must find the rest of the cluster without it.
    victim = (net.REDIS[0], net.REDIS_MASTER_PORT)
    replica = net.redis_replica_of(*victim)
    with Load(net.lb_url(), addresses(60), threads=6, prefix="rediskill", seconds=60) as load:
        time.sleep(3)
        killed_at = time.monotonic()
        assert net.kill_host_processes(victim[0], command_contains=f":{victim[1]}")
        took_over = wait_for("replica promoted", lambda: net.redis_role(*replica) == "master", timeout=20)
        time.sleep(3)
    record = load.record
    print(f"replica took over {took_over:.1f}s after the kill")

    try:
        assert record.failures() == []
        assert Counter(o.operation for o in record.outcomes if o.started > killed_at)["send"] > 10
        slowest = max(o.finished - o.started for o in record.outcomes)
        assert slowest < BOUNDED_SECONDS, slowest
        for outcome in record.outcomes:
            if outcome.operation == "read":
                message_id = int(outcome.path.rsplit("/", 1)[1])
                assert outcome.status == 200, outcome
                assert outcome.answer.json()["text"] == record.acknowledged[message_id]
        # Throttled again, on the cluster as it is now, counted once across both app hosts,
        # as soon as every process has read the new layout (a client of the cluster re-reads
        # it after a failed call).
        limit = int(net.THROTTLE_RATE.split("/")[0])

        def throttled_exactly() -> bool:
            (client,) = addresses(1)
            statuses = Counter(
                lb("POST", "/chat", source=client, json_body={"username": "after", "text": "x"}).status
                for _ in range(limit + 5)
            )
            return statuses == {201: limit, 429: 5}

        counted_again = wait_for("the throttle counting again", throttled_exactly, timeout=30)
        print(f"the throttle counted every request again {took_over + counted_again:.1f}s after the kill")
    finally:
        net.start_redis_node(*victim)
        wait_for("the old master back as a replica", lambda: net.redis_role(*victim) == "slave", timeout=20)
