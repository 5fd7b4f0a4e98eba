"""Tearing the cluster down leaves nothing of it on the machine. (Runs last of the cluster tests.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.conftest import KEEP
from tests.support.processes import wait_until


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(KEEP, reason="EMS_CLUSTER_KEEP=1 keeps the cluster running")
def test_teardown_kills_every_process_and_removes_every_host(net):
    pids = [pid for host in net.HOSTS for pid in net.host_pids(host)]
    assert len(pids) > 20

    net.down()

    assert net.leftovers() == []
    # A killed process may linger a moment as a zombie until its parent reaps it; it runs nothing.
    wait_until(lambda: not any(_running(pid) for pid in pids), what="every cluster process gone")
    assert not net.STATE_DIR.exists()
