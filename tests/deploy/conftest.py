"""The deployment as shipped: gunicorn with deploy/gunicorn.conf.py behind the nginx site of deploy/nginx/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.nginx import RunningNginx, find_nginx, running_site
from tests.support.processes import PROJECT_DIR, ServiceProcess
from tests.support.tools import missing

GUNICORN_CONF = PROJECT_DIR / "deploy" / "gunicorn.conf.py"


@pytest.fixture(scope="module")
def nginx() -> str:
    found = find_nginx()
    if found is None:
        missing("nginx", install="apt-get install -y nginx")
    return found


@contextmanager
def deployed(
    nginx: str,
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    workers: int = 2,
    server: str = "gunicorn",
    **site_options,
) -> Iterator[tuple[ServiceProcess, RunningNginx]]:
    """
    gunicorn (as nginx's only upstream, trusting it as a proxy) and nginx with the site, until the block ends.

    ``server="granian"``: granian with deploy/granian.py in gunicorn's place.
    """
    service = ServiceProcess(
        tmp_path,
        workers=workers,
        env={"CHAT_TRUSTED_PROXIES": "127.0.0.1", **(env or {})},
        config=GUNICORN_CONF,
        server=server,
    )
    service.start()
    try:
        with running_site(
            nginx, tmp_path / "nginx", upstream_port=service.port, static_root=tmp_path, **site_options
        ) as site:
            yield service, site
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        service.stop()
