from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hardening.postgres import PostgresCluster, postgres_bin_dir
from tests.support.tools import missing


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PostgresCluster]:
    """A migrated PostgreSQL cluster of the tests' own, which they may stop, start and damage."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing("the PostgreSQL server (initdb, pg_ctl)", install="apt-get install -y postgresql")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        cluster.migrate()
        yield cluster
    finally:
        cluster.remove()
