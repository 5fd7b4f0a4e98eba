"""
nginx with the shipped site (deploy/nginx/: a site file and its snippets), on loopback ports.

Used by the deployment tests and by the benchmark, so that both run the site
exactly as it ships, with only this host's ports, paths and names put in.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import PROJECT_DIR, free_port, wait_for_port

NGINX_DIR = PROJECT_DIR / "deploy" / "nginx"
PLAIN_SITE = NGINX_DIR / "ephemeral-messages.conf"
TLS_SITE = NGINX_DIR / "ephemeral-messages-tls.conf"
SNIPPETS = NGINX_DIR / "snippets"
# The main-context values docs/DEPLOYMENT.md has the operator set in /etc/nginx/nginx.conf.
WORKER_CONNECTIONS = 16384
WORKER_RLIMIT_NOFILE = 65536
# The site's names as the tests' requests send them (Host: 127.0.0.1:<port>), in place of chat.example.org.
LOCAL_SERVER_NAMES = "127.0.0.1 localhost"


def find_nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@dataclass(frozen=True)
class LocalValues:
    """This host's values for what the shipped files name for production."""

    http_port: int
    https_port: int
    upstream_port: int
    # The asynchronous gunicorn that waiting requests go to; the same one when there is only one.
    waiting_port: int
    static_root: Path
    access_log: Path
    snippets: Path
    certificate: Path | None = None
    certificate_key: Path | None = None


def render(text: str, local: LocalValues) -> str:
    """A site or snippet file with this host's values in place of the production ones it ships with."""
    text = re.sub(r"^\s*listen \[::\]:\d+[^;]*;\n", "", text, flags=re.MULTILINE)
    replacements = {
        "listen 80": f"listen 127.0.0.1:{local.http_port}",
        "listen 443": f"listen 127.0.0.1:{local.https_port}",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{local.upstream_port};",
        "server 127.0.0.1:8001;": f"server 127.0.0.1:{local.waiting_port};",
        "alias /srv/ephemeral-messages/static/;": f"alias {local.static_root}/;",
        "/var/log/nginx/ephemeral-messages.access.log": str(local.access_log),
        "/etc/nginx/snippets/": f"{local.snippets}/",
        "server_name chat.example.org;": f"server_name {LOCAL_SERVER_NAMES};",
    }
    if local.certificate and local.certificate_key:
        replacements["/etc/letsencrypt/live/chat.example.org/fullchain.pem"] = str(local.certificate)
        replacements["/etc/letsencrypt/live/chat.example.org/privkey.pem"] = str(local.certificate_key)
    for production, value in replacements.items():
        text = text.replace(production, value)
    return text


def nginx_conf(prefix: Path, site: Path) -> str:
    """A main nginx.conf like Debian's (a worker per core), with DEPLOYMENT.md's limits and paths under ``prefix``."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would switch to an unprivileged user that cannot
    # read the caller's private temporary folders.
    user = "user root;" if os.geteuid() == 0 else ""
    # As many open files as this host lets the test's nginx have, up to the documented value.
    hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    open_files = WORKER_RLIMIT_NOFILE if hard_limit == resource.RLIM_INFINITY else min(WORKER_RLIMIT_NOFILE, hard_limit)
    return f"""
daemon off;
worker_processes auto;
worker_rlimit_nofile {open_files};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
{user}
events {{ worker_connections {WORKER_CONNECTIONS}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    # As Debian's nginx.conf sets them for every site.
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
{temp_paths}
    include {site};
}}
"""


@dataclass(frozen=True)
class RunningNginx:
    port: int
    https_port: int
    prefix: Path

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"


@contextmanager
def running_site(
    nginx: str,
    prefix: Path,
    *,
    upstream_port: int,
    static_root: Path,
    waiting_port: int | None = None,
    site: Path = PLAIN_SITE,
    site_edits: dict[str, str] | None = None,
    certificate: tuple[Path, Path] | None = None,
) -> Iterator[RunningNginx]:
    """
    Run nginx with ``site`` and the snippets in front of ``upstream_port`` until the block ends.

    ``site_edits`` are changes an operator makes to the site file as documented
    (each old text must occur in it exactly once).
    """
    prefix.mkdir(parents=True, exist_ok=True)
    snippets = prefix / "snippets"
    snippets.mkdir(exist_ok=True)
    local = LocalValues(
        http_port=free_port(),
        https_port=free_port(),
        upstream_port=upstream_port,
        waiting_port=waiting_port or upstream_port,
        static_root=static_root,
        access_log=prefix / "access.log",
        snippets=snippets,
        certificate=certificate[0] if certificate else None,
        certificate_key=certificate[1] if certificate else None,
    )
    for snippet in SNIPPETS.iterdir():
        (snippets / snippet.name).write_text(render(snippet.read_text(), local))
    site_text = site.read_text()
    for old, new in (site_edits or {}).items():
        if site_text.count(old) != 1:
            raise ValueError(f"the site file no longer contains {old!r} exactly once")
        site_text = site_text.replace(old, new)
    rendered_site = prefix / site.name
    rendered_site.write_text(render(site_text, local))
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, rendered_site))
    process = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_for_port(local.http_port)
        except TimeoutError:
            raise RuntimeError(f"nginx did not start: {(prefix / 'error.log').read_text()}") from None
        yield RunningNginx(local.http_port, local.https_port, prefix)
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def running_nginx(
    nginx: str, prefix: Path, *, upstream_port: int, static_root: Path, waiting_port: int | None = None
) -> Iterator[int]:
    """The plain-HTTP site in front of ``upstream_port`` (and ``waiting_port``); yields the port it listens on."""
    with running_site(
        nginx, prefix, upstream_port=upstream_port, static_root=static_root, waiting_port=waiting_port
    ) as running:
        yield running.port
