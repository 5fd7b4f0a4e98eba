"""
REDIS_CLUSTER=1: the hot store and the throttle on a real Redis Cluster of three
masters, found from the one node REDIS_URL names; and failing open when that
node is down.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from tests.support.processes import PATIENCE_SECONDS, RedisServer, free_port
from tests.support.tools import missing

MASTERS = 3


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        missing("redis-server and redis-cli", install="apt-get install -y redis-server")
    nodes = []
    for n in range(MASTERS):
        folder = tmp_path_factory.mktemp(f"redis-cluster-{n}")
        options = ("--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf"))
        node = RedisServer(folder, options=options)
        # A cluster node also listens on its port + 10000 (the cluster bus).
        node.port = next(port for port in iter(free_port, None) if port < 55535)
        nodes.append(node)
    try:
        for node in nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"], check=True, capture_output=True
        )
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not all(_client(node).execute_command("CLUSTER INFO")["cluster_state"] == "ok" for node in nodes):
            assert time.monotonic() < deadline, "the Redis Cluster did not form"
            time.sleep(0.1)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _client(node: RedisServer) -> redis.Redis:
    return redis.Redis(port=node.port)


@pytest.fixture
def clustered(redis_cluster: list[RedisServer], chat_settings) -> list[RedisServer]:
    for node in redis_cluster:
        _client(node).flushall()
    chat_settings(REDIS_URL=redis_cluster[0].url, REDIS_CLUSTER=True, THROTTLE_RATE="20/day")
    return redis_cluster


def test_cached_messages_and_throttle_counts_spread_over_every_master(api, send, clustered):
    ids = [send(username=f"u{n}", text=f"t{n}", timeout=0).json()["id"] for n in range(20)]
    for message_id in ids:
        for _ in range(2):  # the second read is answered by the hot store
            assert api.get(f"/chat/{message_id}").json()["text"] == f"t{ids.index(message_id)}"

    assert all(_client(node).dbsize() > 0 for node in clustered)
    # The throttle counted all 20 sends (from one address) across the cluster: the next is refused.
    assert send(username="u", text="one too many").status_code == 429


def test_reads_by_id_are_counted_and_answered_across_the_masters(api, send, clustered, chat_settings):
    # Each read's count and look-up go out together; their keys live on different masters.
    chat_settings(READ_THROTTLE_RATE="20/day")
    ids = [send(username=f"u{n}", text=f"t{n}", timeout=0).json()["id"] for n in range(10)]
    hits = REGISTRY.get_sample_value("chat_hot_store_lookups_total", {"result": "hit"}) or 0.0

    answers = [api.get(f"/chat/{message_id}") for message_id in ids for _ in range(2)]

    assert [answer.json()["text"] for answer in answers] == [f"t{n}" for n in range(10) for _ in range(2)]
    assert REGISTRY.get_sample_value("chat_hot_store_lookups_total", {"result": "hit"}) == hits + 10
    refused = api.get(f"/chat/{ids[0]}")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1


def test_the_named_node_down_at_first_use_fails_open(api, send, clustered):
    clustered[0].stop()
    try:
        answer = send(username="ann", text="still taken", timeout=0)
        assert answer.status_code == 201
        assert api.get(f"/chat/{answer.json()['id']}").json()["text"] == "still taken"
    finally:
        clustered[0].start()
