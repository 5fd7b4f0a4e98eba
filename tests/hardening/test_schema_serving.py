"""The schema endpoint: one client cannot grow a worker's memory, and a fresh worker answers at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.utils.translation import trans_real
from rest_framework.test import APIClient

from tests.hardening.http import call
from tests.support.processes import PROJECT_DIR, running_service


def test_distinct_lang_values_leave_no_per_process_state(api: APIClient) -> None:
    assert api.get("/api/schema/?format=json").status_code == 200
    catalogs = len(trans_real._translations)
    catalog_lookups = trans_real.translation_catalog_exists.cache_info().currsize

    for n in range(40):
        answer = api.get(f"/api/schema/?format=json&lang=x{n}-{'q' * n}")
        assert answer.status_code == 200

    assert len(trans_real._translations) == catalogs
    assert trans_real.translation_catalog_exists.cache_info().currsize == catalog_lookups


def test_the_schema_is_the_same_whatever_lang_asks_for(api: APIClient) -> None:
    plain = api.get("/api/schema/?format=json")
    german = api.get("/api/schema/?format=json&lang=de")
    assert plain.status_code == german.status_code == 200
    assert german.content == plain.content


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preload", ["1", "0"], ids=["built-in-the-master", "built-by-each-worker"])
def test_concurrent_first_schema_requests_after_a_start_all_succeed(tmp_path: Path, preload: str) -> None:
    # The production worker: threads sharing one process.
    config = PROJECT_DIR / "deploy" / "gunicorn.conf.py"
    env = {"GUNICORN_THREADS": "16", "GUNICORN_PRELOAD": preload}
    with running_service(tmp_path, workers=2, config=config, env=env) as service, ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: call(service.url, "GET", "/api/schema/?format=json"), range(32)))

    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200] * 32, statuses
    assert len({answer.body for answer in answers}) == 1
