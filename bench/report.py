"""One benchmark result per scenario, and the table (or JSON) that reports them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from bench.processes import GUNICORN_CONF, ROOT
from deploy import granian


@dataclass
class Result:
    scenario: str
    rows: str
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    cpu_seconds: float = 0.0
    checks: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else 0.0


def rows_label(rows: int) -> str:
    """10000 -> '10^4'; anything not a power of ten as it is."""
    digits = str(rows)
    return f"10^{len(digits) - 1}" if digits.strip("0") == "1" else digits


def print_table(results: list[Result], bare_rate: float) -> None:
    header = (
        f"{'scenario':<20} {'rows':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'ratio':>6} "
        f"{'CPU ms':>7}  checks"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r.rate / bare_rate if bare_rate else 0.0
        checks = "; ".join(r.checks) if r.checks else "ok"
        print(
            f"{r.scenario:<20} {r.rows:>6} {r.rate:>8.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.errors:>7} "
            f"{ratio:>6.2f} {r.cpu_ms:>7.2f}  {checks}"
        )


def describe_settings(server: str, nginx: str | None) -> str:
    names = sorted(name for name in os.environ if name.startswith(f"{server.upper()}_"))
    overrides = ", ".join(f"{name}={os.environ[name]}" for name in names) or "none"
    front = f"{server} loaded directly" if nginx is None else "behind nginx (deploy/nginx)"
    if server == "granian":
        shown = ", ".join(
            f"{name.removeprefix('GRANIAN_').lower()}={value}"
            for name, value in granian.DEFAULTS.items()
            if name not in {"GRANIAN_LOG_ACCESS_FMT", "GRANIAN_HOST", "GRANIAN_PORT"}
        )
        return f"granian {version('granian')}: deploy/granian.py ({shown}), overrides: {overrides}; {front}"
    return f"gunicorn: {GUNICORN_CONF.relative_to(ROOT)}, overrides: {overrides}; {front}"


def print_soak(samples: list[tuple[float, list[float]]]) -> None:
    if samples:
        print("\nworker RSS during the soak (MiB, one column per worker):")
        for elapsed, sizes in samples:
            print(f"  {elapsed:6.0f} s  " + "  ".join(f"{size:7.1f}" for size in sizes))


def write_json(path: Path, bare_rate: float, results: list[Result], soak_samples: list) -> None:
    document = {
        "bare_rate": bare_rate,
        "results": [{**r.__dict__, "rate": r.rate} for r in results],
        "soak_rss": soak_samples,
    }
    path.write_text(json.dumps(document, indent=2))
