"""The shipped Prometheus configuration and alert rules (deploy/prometheus/), checked with promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import restapi.metrics  # noqa: F401 - registers the service's metrics
from tests.support.processes import PROJECT_DIR
from tests.support.tools import missing

PROMETHEUS_DIR = PROJECT_DIR / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing("promtool", install="apt-get install -y prometheus")
    return found


def run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)


def test_the_alert_rules_and_the_scrape_configuration_are_valid(promtool: str) -> None:
    rules = run(promtool, "check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = run(promtool, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_alerts_fire_when_they_should_and_not_otherwise(promtool: str) -> None:
    # 5xx rate, throttle fail-open, and a purge not run for a day across a service restart.
    result = run(promtool, "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_alerts_use_is_one_the_service_exports() -> None:
    exported = {sample_name for metric in REGISTRY.collect() for sample_name in metric_names(metric)}
    used = set(re.findall(r"\b(chat_[a-z_]+)", (PROMETHEUS_DIR / "alerts.yml").read_text()))
    assert used
    assert used <= exported, used - exported


def metric_names(metric) -> set[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(metric.type, ("",))
    return {metric.name + suffix for suffix in suffixes}


def test_the_guide_names_each_alert(tmp_path: Path) -> None:
    alerts = re.findall(r"- alert: (\w+)", (PROMETHEUS_DIR / "alerts.yml").read_text())
    guide = (PROJECT_DIR / "docs" / "OPERATIONS.md").read_text()
    assert [alert for alert in alerts if f"`{alert}`" not in guide] == []
