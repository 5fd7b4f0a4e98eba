"""An app host behind PgBouncer in transaction mode runs every statement of the service."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.cluster.conftest import on_host

THREADS = 8
ROUNDS = 8


def transactions(net) -> int:
    (row,) = [line for line in net.pgbouncer_show("STATS") if line.startswith(f"{net.DATABASE}|")]
    return int(row.split("|")[1])


def test_every_statement_works_on_server_connections_shared_by_transactions(net, addresses):
    app = net.PGBOUNCER_APP
    before = transactions(net)
    clients = addresses(THREADS)

    def client(n: int) -> list[str]:
        problems = []
        for round_ in range(ROUNDS):

            def check(answer, expected: int, what: str) -> None:
                if answer.status != expected:
                    problems.append(f"{what}: {answer.status} {answer.body[:200]!r}")

            body = {"username": f"pooled{n}", "text": f"r{round_}"}
            sent = on_host(app, "POST", "/chat", json_body=body, source_address=clients[n])
            check(sent, 201, "send")
            if sent.status == 201:
                read = on_host(app, "GET", f"/chat/{sent.json()['id']}")
                check(read, 200, "read")
            collected = on_host(app, "GET", f"/chats/pooled{n}")
            check(collected, 200, "collect")
            if collected.status == 200 and [m["text"] for m in collected.json()] != [f"r{round_}"]:
                problems.append(f"collect {round_}: {collected.json()}")
            check(on_host(app, "GET", "/ready"), 200, "ready")
        return problems

    with ThreadPoolExecutor(THREADS) as pool:
        problems = [problem for found in pool.map(client, range(THREADS)) for problem in found]

    assert problems == []
    # Each statement ran more often than psycopg's threshold for preparing one (5) ...
    assert ROUNDS * THREADS > 5
    # ... and all of it went through PgBouncer, on no more server connections than its pool.
    assert transactions(net) - before >= THREADS * ROUNDS * 3
    servers = [line for line in net.pgbouncer_show("SERVERS") if f"|{net.DATABASE}|" in line]
    assert 0 < len(servers) <= net.PGBOUNCER_POOL_SIZE
