"""
The backup and restore procedure of docs/OPERATIONS.md, run as written: pg_dump
of the live database, pg_restore into a fresh database, the hot store emptied,
and the service started on the copy serves the old messages.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.hardening.http import call
from tests.support.processes import PROJECT_DIR, current_database_url, running_service
from tests.support.tools import missing

pytestmark = [
    pytest.mark.server,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the backup procedure is PostgreSQL's"),
]

GUNICORN_CONF = PROJECT_DIR / "deploy" / "gunicorn.conf.py"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(name, install="apt-get install -y postgresql-client")
    return found


@pytest.fixture
def restored_database_url() -> Iterator[str]:
    """The URL of a database that does not exist yet, dropped after the test."""
    source = current_database_url()
    name = f"{connection.settings_dict['NAME']}_restored"
    admin = source.rsplit("/", 1)[0] + "/postgres"
    subprocess.run([tool("psql"), admin, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True, capture_output=True)
    yield source.rsplit("/", 1)[0] + f"/{name}"
    connection.close()
    subprocess.run(
        [tool("psql"), admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, capture_output=True
    )


def test_a_restored_backup_serves_the_old_messages(tmp_path: Path, restored_database_url: str) -> None:
    for folder in ("before", "after"):
        (tmp_path / folder).mkdir()
    with running_service(tmp_path / "before", workers=1, config=GUNICORN_CONF) as service:
        ids = {}
        for text, timeout in (("kept live", 3600), ("collected before the backup", 3600)):
            answer = call(service.url, "POST", "/chat", json_body={"username": "ann", "text": text, "timeout": timeout})
            ids[text] = answer.json()["id"]
        assert call(service.url, "GET", "/chats/ann").status == 200
        call(service.url, "POST", "/chat", json_body={"username": "ann", "text": "kept live", "timeout": 3600})
        live_id = call(service.url, "POST", "/chat", json_body={"username": "bob", "text": "for bob"}).json()["id"]

    # The documented procedure: a dump in pg_dump's custom format, restored into a fresh database.
    dump = tmp_path / "ephemeral.dump"
    subprocess.run([tool("pg_dump"), "--format=custom", f"--file={dump}", current_database_url()], check=True)
    admin = restored_database_url.rsplit("/", 1)[0] + "/postgres"
    name = restored_database_url.rsplit("/", 1)[1]
    subprocess.run([tool("psql"), admin, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    subprocess.run(
        [tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={restored_database_url}", str(dump)],
        check=True,
    )
    # The hot store may hold messages as they were after the backup: emptied before the service starts.
    redis_url = service.env.get("REDIS_URL")
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()

    env = {"DATABASE_URL": restored_database_url}
    with running_service(tmp_path / "after", workers=1, config=GUNICORN_CONF, env=env) as restored:
        collected = call(restored.url, "GET", f"/chat/{ids['collected before the backup']}")
        assert (collected.status, collected.json()["text"]) == (200, "collected before the backup")
        bob = call(restored.url, "GET", f"/chat/{live_id}")
        assert (bob.status, bob.json()["text"]) == (200, "for bob")
        # Live messages are live in the copy, collected ones stay collected.
        assert [item["text"] for item in call(restored.url, "GET", "/chats/ann").json()] == ["kept live"]
        assert [item["id"] for item in call(restored.url, "GET", "/chats/bob").json()] == [live_id]
        # The restored database takes new messages beside the old ones, under ids of their own.
        new = call(restored.url, "POST", "/chat", json_body={"username": "ann", "text": "after the restore"})
        assert new.status == 201
        assert new.json()["id"] not in {*ids.values(), live_id}
        read_back = call(restored.url, "GET", f"/chat/{new.json()['id']}")
        assert (read_back.status, read_back.json()["text"]) == (200, "after the restore")
