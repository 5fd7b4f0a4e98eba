"""
Deployments that share one Redis database never meet there: every key carries
the deployment id that the deployment's own database holds.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis

from restapi.models import Deployment
from restapi.storage.deployment import deployment_id
from restapi.storage.hot import message_key
from restapi.storage.per_process import forget_all
from tests.hardening.http import call
from tests.support.processes import RedisServer, migrate_database, running_service


@pytest.mark.django_db
def test_redis_keys_carry_the_id_the_database_holds() -> None:
    held = Deployment.objects.get().deployment_id

    assert message_key(7) == f"ephemeral:{held}:message:7"


@pytest.mark.django_db
def test_a_database_without_an_id_draws_one_that_every_process_then_reads() -> None:
    Deployment.objects.all().delete()

    drawn = deployment_id()
    forget_all()

    assert deployment_id() == drawn == Deployment.objects.get().deployment_id


@pytest.mark.server
def test_two_deployments_sharing_one_redis_database_never_meet(
    tmp_path: Path, private_redis: RedisServer, redis_client: redis.Redis
) -> None:
    urls = {}
    for name in ("production", "staging"):
        (tmp_path / name).mkdir()
        urls[name] = f"sqlite:///{tmp_path / name / 'messages.sqlite3'}"
        migrate_database(urls[name], tmp_path / name / "migrate.log")
    common = {"REDIS_URL": private_redis.url, "CHAT_THROTTLE_RATE": "2/hour"}
    with (
        running_service(tmp_path / "production", workers=1, env={**common, "DATABASE_URL": urls["production"]}) as prod,
        running_service(tmp_path / "staging", workers=1, env={**common, "DATABASE_URL": urls["staging"]}) as staging,
    ):

        def send(service, text: str):
            return call(service.url, "POST", "/chat", json_body={"username": "ann", "text": text, "timeout": 0})

        message_id = send(prod, "production's secret").json()["id"]
        assert send(staging, "staging's own").status == 201
        # Random ids of two deployments almost never meet; a copy of a database, say, can
        # hold the same id with another text, so staging is given one under production's id.
        with sqlite3.connect(tmp_path / "staging" / "messages.sqlite3") as staging_database:
            staging_database.execute(
                "INSERT INTO restapi_message (id, username, text, created_at, expiration_date) "
                "VALUES (?, 'ann', ?, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                (message_id, "staging's text"),
            )
        # Production's settled message is now in the shared Redis.
        assert call(prod.url, "GET", f"/chat/{message_id}").json()["text"] == "production's secret"
        assert redis_client.dbsize() > 0

        assert call(staging.url, "GET", f"/chat/{message_id}").json()["text"] == "staging's text"
        # Each deployment has spent one of its own two sends, not two of a shared budget.
        assert send(prod, "second").status == 201
        assert send(staging, "second").status == 201
        assert send(prod, "third").status == 429
    # One cached copy per deployment.
    assert len(redis_client.keys(f"ephemeral:*message:{message_id}")) == 2
