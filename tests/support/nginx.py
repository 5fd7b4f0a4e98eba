"""
nginx with the shipped site file (deploy/nginx/ephemeral-messages.conf), on a loopback port.

Used by the deployment tests and by the benchmark, so that both run the site
exactly as it ships, with only this host's ports and paths put in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import PROJECT_DIR, free_port, wait_for_port

SITE_TEMPLATE = PROJECT_DIR / "deploy" / "nginx" / "ephemeral-messages.conf"


def find_nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def render_site(template: str, *, port: int, upstream_port: int, static_root: Path, access_log: Path) -> str:
    """The site file with this host's values in place of the production ones it ships with."""
    replacements = {
        "    listen 80;\n": f"    listen 127.0.0.1:{port};\n",
        "    listen [::]:80;\n": "",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "alias /srv/ephemeral-messages/static/;": f"alias {static_root}/;",
        "/var/log/nginx/ephemeral-messages.access.log": str(access_log),
    }
    for production, local in replacements.items():
        if template.count(production) != 1:
            raise ValueError(f"the site template no longer contains {production!r} exactly once")
        template = template.replace(production, local)
    return template


def nginx_conf(prefix: Path, site: Path) -> str:
    """A main nginx.conf like Debian's (one worker per core), with every path under ``prefix``."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would switch to an unprivileged user that cannot
    # read the caller's private temporary folders.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
daemon off;
worker_processes auto;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
{user}
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{temp_paths}
    include {site};
}}
"""


@contextmanager
def running_nginx(nginx: str, prefix: Path, *, upstream_port: int, static_root: Path) -> Iterator[int]:
    """Run nginx in front of ``upstream_port`` until the block ends; yields the port it listens on."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = prefix / "ephemeral-messages.conf"
    site.write_text(
        render_site(
            SITE_TEMPLATE.read_text(),
            port=port,
            upstream_port=upstream_port,
            static_root=static_root,
            access_log=prefix / "access.log",
        )
    )
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, site))
    process = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_for_port(port)
        except TimeoutError:
            raise RuntimeError(f"nginx did not start: {(prefix / 'error.log').read_text()}") from None
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
