"""
A small multi-host deployment of the service, built on this machine from network namespaces.

    python3 deploy/cluster/cluster.py up      # as root; installs what it needs from Debian
    python3 deploy/cluster/cluster.py status
    python3 deploy/cluster/cluster.py down    # kills every process in the hosts, removes them

Every host is a network namespace with one veth link to a bridge (``ems-br0``).
The bridge is the only way in or out: the namespaces have no default route and
the machine does not forward, so nothing of the cluster reaches beyond it. The
machine itself sits on the bridge as the operator (10.213.0.1) and as the
clients (10.213.1-4.x, one address per simulated client), so each client is a
distinct address to nginx and to the throttle.

    lb      10.213.0.10   nginx with deploy/nginx/ephemeral-messages.conf, upstream to app1 and app2
    app1    10.213.0.21   gunicorn with deploy/gunicorn.conf.py; DATABASE_URL names both
                          PostgreSQL hosts with target_session_attrs=read-write
    app2    10.213.0.22   gunicorn the same way, but through a PgBouncer in transaction mode
                          on the host, which reaches the primary through an HAProxy that asks
                          Patroni's REST API which node is the primary
    dcs1..3 10.213.0.33..35  etcd, Patroni's store of who leads: three members, so that
                          losing any one of them leaves a quorum
    db1/2   10.213.0.31/32  PostgreSQL under Patroni: a primary and a synchronous standby
    redis1..3 10.213.0.41..43  a Redis Cluster: a master on :7000 and a replica of another
                          host's master on :7001 on each

Teardown does not trust any record of what was started: every process inside
the namespaces (``ip netns pids``) is killed, then the namespaces and the bridge
are removed, and the working folder with them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("EMS_CLUSTER_DIR", "/tmp/ems-cluster"))
# Where the logs of a cluster that failed to start, or of a failed test, are kept.
LOGS_KEPT = STATE_DIR.with_name(STATE_DIR.name + "-logs")
PREFIX = "ems-"
BRIDGE = "ems-br0"
OPERATOR_ADDRESS = "10.213.0.1"
PREFIX_LENGTH = 16
CLIENT_COUNT = 1000
DATABASE = "ephemeral"
SECRET_KEY = "cluster-only-" + "s" * 50
THROTTLE_RATE = "50/hour"
MAX_COLLECT = 10

DEBIAN_PACKAGES = {
    "/usr/sbin/nginx": "nginx",
    "/usr/bin/patroni": "patroni",
    "/usr/lib/python3/dist-packages/etcd/__init__.py": "python3-etcd",
    "/usr/bin/etcd": "etcd-server",
    "/usr/sbin/pgbouncer": "pgbouncer",
    "/usr/sbin/haproxy": "haproxy",
    "/usr/bin/redis-server": "redis-server",
    "/usr/bin/redis-cli": "redis-tools",
    "/usr/bin/psql": "postgresql-client",
}


@dataclass(frozen=True)
class Host:
    name: str
    address: str

    @property
    def namespace(self) -> str:
        return PREFIX + self.name

    @property
    def link(self) -> str:
        """The bridge's end of the host's link; cutting it takes the host off the network."""
        return f"{PREFIX}{self.name}-l"


LB = Host("lb", "10.213.0.10")
APPS = (Host("app1", "10.213.0.21"), Host("app2", "10.213.0.22"))
DCS = (Host("dcs1", "10.213.0.33"), Host("dcs2", "10.213.0.34"), Host("dcs3", "10.213.0.35"))
DBS = (Host("db1", "10.213.0.31"), Host("db2", "10.213.0.32"))
REDIS = (Host("redis1", "10.213.0.41"), Host("redis2", "10.213.0.42"), Host("redis3", "10.213.0.43"))
HOSTS = (LB, *APPS, *DCS, *DBS, *REDIS)
PGBOUNCER_APP = APPS[1]
REDIS_MASTER_PORT = 7000
REDIS_REPLICA_PORT = 7001
PATRONI_PORT = 8008
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
PGBOUNCER_POOL_SIZE = 2
APP_PORT = 8000

# Patroni's timing: the leader key lives TTL seconds and is renewed every LOOP_WAIT;
# a primary that cannot renew it for RETRY_TIMEOUT demotes itself. TTL bounds how
# long a dead primary keeps its lock, so it bounds the failover window.
PATRONI_TTL = 10
PATRONI_LOOP_WAIT = 1
PATRONI_RETRY_TIMEOUT = 4
# How long a Redis Cluster node may be silent before its replica takes over.
REDIS_NODE_TIMEOUT_MS = 1000


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(*command: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=quiet, text=True)


def in_host(host: Host, *command: str) -> list[str]:
    return ["ip", "netns", "exec", host.namespace, *command]


def postgres_bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    return versions[-1].parent


def ensure_packages() -> None:
    """Install from Debian what the cluster runs and is not here yet."""
    missing = sorted({package for path, package in DEBIAN_PACKAGES.items() if not Path(path).exists()})
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        missing.append("postgresql")
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


# -- the network ------------------------------------------------------------------------------


def namespaces() -> list[str]:
    listing = run("ip", "-json", "netns", "list", quiet=True).stdout.strip()
    return [entry["name"] for entry in json.loads(listing or "[]") if entry["name"].startswith(PREFIX)]


def build_network() -> None:
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{OPERATOR_ADDRESS}/{PREFIX_LENGTH}", "dev", BRIDGE)
    batch = [f"addr add {client_address(n)}/{PREFIX_LENGTH} dev {BRIDGE}" for n in range(1, CLIENT_COUNT + 1)]
    subprocess.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True)
    run("ip", "link", "set", BRIDGE, "up")
    for host in HOSTS:
        run("ip", "netns", "add", host.namespace)
        run("ip", "link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
        run("ip", "link", "set", host.link, "master", BRIDGE, "up")
        run(*in_host(host, "ip", "addr", "add", f"{host.address}/{PREFIX_LENGTH}", "dev", "eth0"))
        run(*in_host(host, "ip", "link", "set", "eth0", "up"))
        run(*in_host(host, "ip", "link", "set", "lo", "up"))


def cut_link(host: Host) -> None:
    run("ip", "link", "set", host.link, "down")


def restore_link(host: Host) -> None:
    run("ip", "link", "set", host.link, "up")


def client_address(n: int) -> str:
    """The n-th simulated client's address (1 ≤ n ≤ CLIENT_COUNT)."""
    if not 1 <= n <= CLIENT_COUNT:
        raise ValueError(f"client {n} out of 1..{CLIENT_COUNT}")
    return f"10.213.{1 + (n - 1) // 250}.{1 + (n - 1) % 250}"


# -- processes --------------------------------------------------------------------------------


def start(host: Host, name: str, command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Start ``command`` inside ``host``, its output in the state folder; returns the Popen."""
    output = (STATE_DIR / "logs" / f"{host.name}-{name}.log").open("ab")
    process = subprocess.Popen(
        in_host(host, *command),
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    output.close()
    (STATE_DIR / "pids" / f"{host.name}-{name}").write_text(str(process.pid))
    return process


def pid_of(host: Host, name: str) -> int:
    return int((STATE_DIR / "pids" / f"{host.name}-{name}").read_text())


def host_pids(host: Host) -> list[int]:
    listing = run("ip", "netns", "pids", host.namespace, check=False, quiet=True).stdout
    return [int(pid) for pid in listing.split()]


def kill_host_processes(host: Host, *, command_contains: str = "") -> list[int]:
    """SIGKILL the host's processes (only those whose command line contains the text, if given)."""
    killed = []
    for pid in host_pids(host):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command_contains in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


def wait_until(what: str, check, *, timeout: float, logs: tuple[str, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, subprocess.SubprocessError, ValueError):
            pass
        time.sleep(0.2)
    tails = "".join(f"\n--- {name}\n{log_tail(name)}" for name in logs)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}{tails}")


def log_tail(name: str, lines: int = 30) -> str:
    path = STATE_DIR / "logs" / f"{name}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def http_status(url: str, *, timeout: float = 1.0) -> int:
    """The status of a GET, 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return 0


# -- etcd and PostgreSQL under Patroni --------------------------------------------------------


def etcd_url(host: Host, port: int = ETCD_CLIENT_PORT) -> str:
    return f"http://{host.address}:{port}"


def start_etcd_member(host: Host) -> None:
    """
    One member of the three. Started again after a kill, it takes up its data
    folder, which records the cluster it belongs to (the --initial-* flags are
    then ignored), and rejoins the others.
    """
    data = STATE_DIR / host.name
    start(
        host,
        "etcd",
        [
            "etcd",
            f"--name={host.name}",
            f"--data-dir={data}",
            f"--listen-client-urls={etcd_url(host)}",
            f"--advertise-client-urls={etcd_url(host)}",
            f"--listen-peer-urls={etcd_url(host, ETCD_PEER_PORT)}",
            f"--initial-advertise-peer-urls={etcd_url(host, ETCD_PEER_PORT)}",
            f"--initial-cluster={','.join(f'{m.name}={etcd_url(m, ETCD_PEER_PORT)}' for m in DCS)}",
            "--initial-cluster-token=ems-etcd",
            "--initial-cluster-state=new",
        ],
    )


def start_etcd() -> None:
    """All three members at once: they find each other on their peer port and elect a leader."""
    for host in DCS:
        start_etcd_member(host)
    for host in DCS:
        wait_until(f"etcd on {host.name}", lambda h=host: etcd_healthy(h), timeout=20, logs=(f"{host.name}-etcd",))


def etcd_healthy(host: Host) -> bool:
    """The member answers and sees a leader (etcd's /health fails without one)."""
    try:
        with urllib.request.urlopen(f"{etcd_url(host)}/health", timeout=1) as response:
            return json.load(response).get("health") == "true"
    except (OSError, ValueError):
        return False


def etcd_leader() -> Host | None:
    """The member that leads etcd now, as each member's metrics say."""
    for host in DCS:
        try:
            with urllib.request.urlopen(f"{etcd_url(host)}/metrics", timeout=1) as response:
                metrics = response.read().decode()
        except OSError:
            continue
        if re.search(r"^etcd_server_is_leader 1$", metrics, re.MULTILINE):
            return host
    return None


def patroni_config(host: Host) -> str:
    data = STATE_DIR / host.name
    network = f"10.213.0.0/{PREFIX_LENGTH}"
    config = {
        "scope": "ephemeral",
        "name": host.name,
        "restapi": {"listen": f"{host.address}:{PATRONI_PORT}", "connect_address": f"{host.address}:{PATRONI_PORT}"},
        # Every member: Patroni goes on with the others when one does not answer.
        "etcd3": {"hosts": [f"{member.address}:{ETCD_CLIENT_PORT}" for member in DCS]},
        "bootstrap": {
            "dcs": {
                "ttl": PATRONI_TTL,
                "loop_wait": PATRONI_LOOP_WAIT,
                "retry_timeout": PATRONI_RETRY_TIMEOUT,
                "maximum_lag_on_failover": 1048576,
                # Only a standby that confirmed every commit may be promoted, and a
                # commit is acknowledged only once the standby has it: a 201 is on
                # two hosts before the client sees it.
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {"synchronous_commit": "on", "wal_log_hints": "on", "max_connections": 200},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "no-sync"],
        },
        "postgresql": {
            "listen": f"{host.address},127.0.0.1:5432",
            "connect_address": f"{host.address}:5432",
            "data_dir": str(data / "data"),
            "bin_dir": str(postgres_bin_dir()),
            "pgpass": str(data / "pgpass"),
            # A test cluster's copies need not survive a power cut; they must be quick.
            "basebackup": ["no-sync", {"checkpoint": "fast"}],
            "authentication": {"superuser": {"username": "postgres"}, "replication": {"username": "postgres"}},
            "parameters": {"unix_socket_directories": str(data)},
            "pg_hba": [
                "local all all trust",
                "local replication all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",
                f"host all all {network} trust",
                f"host replication all {network} trust",
            ],
        },
    }
    return json.dumps(config, indent=2)


def start_patroni(host: Host) -> None:
    folder = STATE_DIR / host.name
    folder.mkdir(exist_ok=True)
    config = folder / "patroni.yml"
    config.write_text(patroni_config(host))  # JSON is YAML
    shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o700)
    start(
        host,
        "patroni",
        ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "patroni", str(config)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "LC_ALL": "C.UTF-8"},
    )


def patroni_role(host: Host) -> str | None:
    """'primary', 'replica' or None, as the node's Patroni answers."""
    try:
        url = f"http://{host.address}:{PATRONI_PORT}/patroni"
        with urllib.request.urlopen(url, timeout=1) as response:
            state = json.load(response)
    except (OSError, ValueError):
        return None
    if state.get("state") != "running":
        return None
    return "primary" if state.get("role") in {"master", "primary"} else state.get("role")


def primary() -> Host | None:
    for host in DBS:
        if patroni_role(host) == "primary":
            return host
    return None


def is_sync_standby(host: Host) -> bool:
    return http_status(f"http://{host.address}:{PATRONI_PORT}/sync") == 200


def psql(host: Host, sql: str, *, database: str = "postgres") -> str:
    result = run("psql", "-X", "-A", "-t", "-h", host.address, "-U", "postgres", "-d", database, "-c", sql, quiet=True)
    return result.stdout.strip()


def database_url(*hosts: tuple[str, int]) -> str:
    """The service's DATABASE_URL for one or more PostgreSQL hosts, in libpq's multi-host form."""
    netloc = ",".join(f"{address}:{port}" for address, port in hosts)
    return f"postgres://postgres@{netloc}/{DATABASE}?target_session_attrs=read-write"


def start_database() -> subprocess.Popen:
    """
    Both nodes at once: whichever takes the leader lock first bootstraps, the
    other copies and follows it. Returns the migration, still running.
    """
    for host in DBS:
        start_patroni(host)
    wait_until("a primary", lambda: primary() is not None, timeout=40, logs=("db1-patroni", "db2-patroni"))
    leader = primary()
    psql(leader, f"CREATE DATABASE {DATABASE}")
    env = {**service_env(), "DATABASE_URL": database_url((leader.address, 5432))}
    return subprocess.Popen([python(), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT_DIR, env=env)


# -- Redis Cluster ----------------------------------------------------------------------------


def start_redis_node(host: Host, port: int) -> None:
    """One node; started again after a kill, it rejoins the cluster it knew (nodes.conf)."""
    folder = STATE_DIR / f"{host.name}-{port}"
    folder.mkdir(exist_ok=True)
    start(
        host,
        f"redis-{port}",
        [
            "redis-server",
            "--bind",
            host.address,
            "--port",
            str(port),
            "--protected-mode",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(folder / "nodes.conf"),
            "--cluster-node-timeout",
            str(REDIS_NODE_TIMEOUT_MS),
            # A replica takes over however long it was cut off: the data is an
            # accelerator and counters, and losing a little beats waiting.
            "--cluster-replica-validity-factor",
            "0",
            # The slots of the other masters keep answering while one is down.
            "--cluster-require-full-coverage",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
    )


def start_redis() -> None:
    for host in REDIS:
        for port in (REDIS_MASTER_PORT, REDIS_REPLICA_PORT):
            start_redis_node(host, port)


def create_redis_cluster() -> None:
    for host in REDIS:
        for port in (REDIS_MASTER_PORT, REDIS_REPLICA_PORT):
            wait_until(
                f"redis {host.name}:{port}", lambda h=host, p=port: redis_cli(h, p, "PING") == "PONG", timeout=10
            )
    # Masters on :7000, replicas on :7001; redis-cli puts each replica on another host than its master.
    nodes = [f"{host.address}:{port}" for port in (REDIS_MASTER_PORT, REDIS_REPLICA_PORT) for host in REDIS]
    run("redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes", quiet=True)
    wait_until("Redis Cluster", redis_cluster_ready, timeout=30)


def redis_cli(host: Host, port: int, *command: str) -> str:
    result = run("redis-cli", "-h", host.address, "-p", str(port), *command, check=False, quiet=True)
    return result.stdout.strip()


def redis_cluster_ready() -> bool:
    """Every node sees the cluster ok, and every master has a replica in sync."""
    for host in REDIS:
        for port in (REDIS_MASTER_PORT, REDIS_REPLICA_PORT):
            if "cluster_state:ok" not in redis_cli(host, port, "CLUSTER", "INFO"):
                return False
    nodes = [line.split() for line in redis_cli(REDIS[0], REDIS_MASTER_PORT, "CLUSTER", "NODES").splitlines()]
    host_of = {node[0]: node[1].split(":")[0] for node in nodes}
    masters = [node[0] for node in nodes if "master" in node[2]]
    replicas = [node for node in nodes if "slave" in node[2] and node[7] == "connected"]
    apart = all(host_of[node[0]] != host_of.get(node[3]) for node in replicas)
    return len(masters) == 3 and sorted(node[3] for node in replicas) == sorted(masters) and apart


def redis_replica_of(host: Host, port: int) -> tuple[Host, int]:
    """The node that replicates the master at ``host:port``."""
    nodes = [line.split() for line in redis_cli(host, port, "CLUSTER", "NODES").splitlines()]
    (master_id,) = [node[0] for node in nodes if node[1].startswith(f"{host.address}:{port}@")]
    (replica,) = [node[1] for node in nodes if node[3] == master_id]
    address, port_text = replica.split("@")[0].split(":")
    (replica_host,) = [h for h in REDIS if h.address == address]
    return replica_host, int(port_text)


def redis_role(host: Host, port: int) -> str:
    for line in redis_cli(host, port, "INFO", "replication").splitlines():
        if line.startswith("role:"):
            return line.split(":", 1)[1].strip()
    return "down"


# -- the app hosts and the load balancer ------------------------------------------------------


def python() -> str:
    venv = PROJECT_DIR / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def service_env() -> dict[str, str]:
    return {
        "PATH": f"{Path(python()).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C.UTF-8",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": f"{LB.address},{','.join(app.address for app in APPS)}",
        "REDIS_URL": f"redis://{REDIS[0].address}:{REDIS_MASTER_PORT}/0",
        "REDIS_CLUSTER": "1",
        "CHAT_TRUSTED_PROXIES": f"{LB.address}/32",
        "CHAT_THROTTLE_RATE": THROTTLE_RATE,
        # Small, so that concurrent collects of one inbox take turns and really race.
        "CHAT_MAX_COLLECT": str(MAX_COLLECT),
        "STATIC_ROOT": str(STATE_DIR / "static"),
    }


def start_pgbouncer(host: Host) -> None:
    """PgBouncer in transaction mode on the app host, to the primary through HAProxy."""
    folder = STATE_DIR / f"{host.name}-pgbouncer"
    folder.mkdir(exist_ok=True)
    servers = "\n".join(f"    server {db.name} {db.address}:5432 check port {PATRONI_PORT}" for db in DBS)
    (folder / "haproxy.cfg").write_text(
        f"""global
    maxconn 1000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 1s
# Patroni answers 200 on /primary only on the node that holds the leader lock.
listen postgresql_primary
    bind 127.0.0.1:5000
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""
    )
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{DATABASE} = host=127.0.0.1 port=5000 dbname={DATABASE}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6432
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
admin_users = postgres
pool_mode = transaction
; Fewer server connections than the host has threads (2 workers x 4): they are
; shared between transactions, as they would be among many app processes.
default_pool_size = {PGBOUNCER_POOL_SIZE}
max_client_conn = 500
server_login_retry = 1
server_connect_timeout = 3
query_wait_timeout = 10
pidfile =
"""
    )
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    start(host, "haproxy", ["haproxy", "-db", "-f", str(folder / "haproxy.cfg")])
    start(host, "pgbouncer", ["pgbouncer", "-u", "nobody", str(folder / "pgbouncer.ini")])
    folder.chmod(0o755)


def pgbouncer_show(what: str) -> list[str]:
    """Rows of PgBouncer's ``SHOW <what>`` on the app host that has it, fields separated by |."""
    command = ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", "6432", "-U", "postgres", "pgbouncer"]
    result = run(*in_host(PGBOUNCER_APP, *command, "-c", f"SHOW {what}"), quiet=True)
    return result.stdout.splitlines()


def start_app(host: Host) -> None:
    """gunicorn on the host (and its PgBouncer, if it has one and it is not running)."""
    folder = STATE_DIR / host.name
    folder.mkdir(exist_ok=True)
    if host == PGBOUNCER_APP:
        if not host_pids(host):
            start_pgbouncer(host)
        url = database_url(("127.0.0.1", 6432))
    else:
        url = database_url(*((db.address, 5432) for db in DBS))
    env = {
        **service_env(),
        "DATABASE_URL": url,
        # PgBouncer 1.18 in transaction mode cannot carry prepared statements.
        "CHAT_DB_PREPARED_STATEMENTS": "0" if host == PGBOUNCER_APP else "1",
        "DATA_DIR": str(folder / "data"),
        "LOG_FILE": str(STATE_DIR / "logs" / f"{host.name}-chat_server.log"),
        "GUNICORN_BIND": f"{host.address}:{APP_PORT}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "FORWARDED_ALLOW_IPS": LB.address,
    }
    start(
        host,
        "gunicorn",
        [str(Path(python()).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py"],
        env=env,
        cwd=PROJECT_DIR,
    )


def app_ready(host: Host) -> bool:
    return http_status(f"http://{host.address}:{APP_PORT}/ready") == 200


def render_site(text: str) -> str:
    """A file of the shipped site with the load balancer's address, both app hosts and this cluster's paths."""
    folder = STATE_DIR / "lb"
    servers = "".join(f"server {app.address}:{APP_PORT}; " for app in APPS).strip()
    text = re.sub(r"^\s*listen \[::\]:\d+[^;]*;\n", "", text, flags=re.MULTILINE)
    replacements = {
        "listen 80": f"listen {LB.address}:80",
        "server 127.0.0.1:8000;": servers,
        "server_name chat.example.org;": f"server_name {LB.address};",
        "alias /srv/ephemeral-messages/static/;": f"alias {STATE_DIR / 'static'}/;",
        "/var/log/nginx/ephemeral-messages.access.log": str(folder / "access.log"),
        "/etc/nginx/snippets/": f"{folder / 'snippets'}/",
    }
    for production, local in replacements.items():
        text = text.replace(production, local)
    return text


def start_lb() -> None:
    folder = STATE_DIR / "lb"
    (folder / "snippets").mkdir(parents=True, exist_ok=True)
    shipped = PROJECT_DIR / "deploy" / "nginx"
    for snippet in (shipped / "snippets").iterdir():
        (folder / "snippets" / snippet.name).write_text(render_site(snippet.read_text()))
    site = folder / "ephemeral-messages.conf"
    site.write_text(render_site((shipped / "ephemeral-messages.conf").read_text()))
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in kinds)
    (folder / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 2;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
user root;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{temp_paths}
    include {site};
}}
"""
    )
    start(LB, "nginx", ["nginx", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")])


def lb_url() -> str:
    return f"http://{LB.address}"


# -- up, down, status -------------------------------------------------------------------------


def up() -> None:
    if os.geteuid() != 0:
        raise SystemExit("the cluster needs root (network namespaces, Debian packages)")
    began = time.monotonic()
    ensure_packages()
    down(quiet=True)
    for folder in ("logs", "pids"):
        (STATE_DIR / folder).mkdir(parents=True)
    STATE_DIR.chmod(0o755)
    build_network()
    # What does not depend on anything starts first and settles while the rest starts.
    static = subprocess.Popen(
        [python(), "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env={**service_env(), "DATABASE_URL": database_url((DBS[0].address, 5432))},
    )
    start_redis()
    start_etcd()
    log(f"network and etcd at {time.monotonic() - began:.1f}s")
    migration = start_database()
    log(f"PostgreSQL primary at {time.monotonic() - began:.1f}s")
    create_redis_cluster()
    log(f"Redis Cluster at {time.monotonic() - began:.1f}s")
    if static.wait(timeout=60) != 0:
        raise RuntimeError("collectstatic failed")
    for app in APPS:
        start_app(app)
    start_lb()
    if migration.wait(timeout=60) != 0:
        raise RuntimeError("migrate failed")
    logs = ("db1-patroni", "db2-patroni")
    wait_until("a synchronous standby", lambda: any(map(is_sync_standby, DBS)), timeout=40, logs=logs)
    for app in APPS:
        wait_until(f"{app.name} to serve", lambda a=app: app_ready(a), timeout=30, logs=(f"{app.name}-gunicorn",))
    wait_until("nginx", lambda: http_status(f"{lb_url()}/ready") == 200, timeout=10, logs=("lb-nginx",))
    log(f"up in {time.monotonic() - began:.1f}s: {lb_url()}")


def down(*, quiet: bool = False, keep_logs: bool = False) -> None:
    """Kill everything in the hosts and remove them; ``keep_logs`` moves the logs to LOGS_KEPT first."""
    for namespace in namespaces():
        host = Host(namespace.removeprefix(PREFIX), "")
        for _ in range(50):
            pids = host_pids(host)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        run("ip", "netns", "del", namespace)
    if run("ip", "link", "show", BRIDGE, check=False, quiet=True).returncode == 0:
        run("ip", "link", "del", BRIDGE)
    # Veth ends left by an interrupted start.
    for line in run("ip", "-o", "link", "show", check=False, quiet=True).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            run("ip", "link", "del", name, check=False)
    if keep_logs and (STATE_DIR / "logs").exists():
        shutil.rmtree(LOGS_KEPT, ignore_errors=True)
        shutil.move(STATE_DIR / "logs", LOGS_KEPT)
    if STATE_DIR.exists():
        shutil.rmtree(STATE_DIR)
    if not quiet:
        log("down")


def leftovers() -> list[str]:
    """What of a cluster is still on this machine: namespaces, links, processes in the state folder."""
    found = [f"namespace {name}" for name in namespaces()]
    for line in run("ip", "-o", "link", "show", check=False, quiet=True).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            found.append(f"link {name}")
    marker = str(STATE_DIR).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes():
                found.append(f"process {proc.name}")
        except OSError:
            continue
    return found


def status() -> dict[str, object]:
    return {
        "namespaces": namespaces(),
        "etcd": {host.name: etcd_healthy(host) for host in DCS},
        "etcd_leader": (etcd_leader() or Host("-", "")).name,
        "primary": (primary() or Host("-", "")).name,
        "apps": {app.name: app_ready(app) for app in APPS},
        "redis": {f"{h.name}:{p}": redis_role(h, p) for h in REDIS for p in (REDIS_MASTER_PORT, REDIS_REPLICA_PORT)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    command = parser.parse_args().command
    if command == "up":
        try:
            up()
        except BaseException:
            log(f"start failed; tearing down, logs kept in {LOGS_KEPT}")
            down(keep_logs=True)
            raise
    elif command == "down":
        down()
    else:
        print(json.dumps(status(), indent=2))


if __name__ == "__main__":
    main()
