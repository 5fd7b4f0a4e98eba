"""Tearing the cluster down leaves nothing of it on the machine. (Runs last of the cluster tests.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.conftest import KEEP


@pytest.mark.skipif(KEEP, reason="EMS_CLUSTER_KEEP=1 keeps the cluster running")
def test_teardown_kills_every_process_and_removes_every_host(net):
    pids = [pid for host in net.HOSTS for pid in net.host_pids(host)]
    assert len(pids) > 20

    net.down()

    assert net.leftovers() == []
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert not net.STATE_DIR.exists()
