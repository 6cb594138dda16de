"""Ingest throughput: events/s through /v1/batch and single-event requests/s.

    python bench/ingest.py --url http://127.0.0.1:8000 --events 200000
    python bench/ingest.py --start-server            # starts web + worker itself

Prints the figures and, as the floor measured in the same run, a raw COPY of the same
rows into the same PostgreSQL (a scratch copy of the events table with its indexes).
With each rate comes the CPU time each process spent per event or request (from /proc):
on a busy machine the rates drop, the CPU per unit much less.
"""

import argparse
import base64
import datetime as dt
import gzip as gzip_module
import io
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import orjson

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
from bench.process_cpu import CpuMeter  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

EVENT_NAMES = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]


def build_messages(count: int, customers: int, run: str, id_prefix: str = "") -> list[dict]:
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        {
            "type": "track",
            "userId": f"bench-{run}-{i % customers}",
            "event": EVENT_NAMES[i % len(EVENT_NAMES)],
            "properties": {
                "product_id": f"sku-{i % 500}",
                "price": (i % 90) + 9.99,
                "currency": "EUR",
            },
            "context": {"library": {"name": "bench", "version": "1"}, "ip": "127.0.0.1"},
            "messageId": f"{run}-{id_prefix}{i}",
            "timestamp": now,
        }
        for i in range(count)
    ]


def _connect(host: str, port: int) -> socket.socket:
    connection = socket.create_connection((host, port), timeout=60)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _read_answer(connection: socket.socket, pending: bytes) -> tuple[int, bool, bytes]:
    """(status, whether the server closes, bytes of the next answer already read)."""
    while b"\r\n\r\n" not in pending:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, closes = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            closes = True
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    return status, closes, rest[length:]


def post_all(
    url: str, auth: str, bodies: list[bytes], path: str, clients: int, gzipped: bool
) -> float:
    """Send every body with `clients` keep-alive connections; return the seconds taken.

    The requests are written as bytes on plain sockets: http.client cost ~0.3 ms of CPU
    per request, as much as a third of what the server spends, on the same cores.
    """
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname, parsed.port or 80
    work: queue.Queue = queue.Queue()
    for body in bodies:
        work.put(body)
    failures: list[str] = []
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\n"
        + ("Content-Encoding: gzip\r\n" if gzipped else "")
        + "Content-Length: "
    ).encode()

    def client() -> None:
        connection = _connect(host, port)
        pending = b""
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            connection.sendall(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status, closes, pending = _read_answer(connection, pending)
            if status != 200:
                failures.append(f"{status}")
            if closes:
                connection.close()
                connection, pending = _connect(host, port), b""
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"bench: {len(failures)} requests failed, first: HTTP {failures[0]}")
    return elapsed


def copy_floor(messages: list[dict]) -> float:
    """Raw COPY of the same rows into a scratch copy of the events table; rows/s."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM customers_customer ORDER BY id LIMIT 1")
        row = cursor.fetchone()
        customer_id = row[0] if row else None
    if customer_id is None:
        raise SystemExit("bench: no customer to point the floor's rows at")
    now = dt.datetime.now(dt.UTC)
    buffer = io.StringIO()
    for message in messages:
        buffer.write(
            "\t".join(
                [
                    str(customer_id),
                    message["type"],
                    message["event"],
                    orjson.dumps(message["properties"]).decode(),
                    orjson.dumps(message["context"]).decode(),
                    now.isoformat(),
                    now.isoformat(),
                    "floor-" + message["messageId"],
                ]
            )
            + "\n"
        )
    data = buffer.getvalue()
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_event_floor")
        cursor.execute("CREATE TABLE bench_event_floor (LIKE customers_event INCLUDING ALL)")
    connection.commit() if not connection.get_autocommit() else None
    started = time.perf_counter()
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY bench_event_floor (customer_id, type, name, properties, context, timestamp, "
            "received_at, message_id) FROM STDIN"
        ) as copy,
    ):
        copy.write(data)
    raw.commit()
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_event_floor")
    return len(messages) / elapsed


def start_server(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "config.stack", "--port", str(port)],
        cwd=BASE_DIR,
        # Measured as it runs in production: DEBUG off (no query log, no static autorefresh).
        env={
            **os.environ,
            "PYTHONPATH": str(BASE_DIR),
            "DEBUG": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
        },
        stdout=open(BASE_DIR / "var" / "bench-server.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("bench: the server did not start")


def _settle() -> None:
    """Wait until the worker has handed over what the load left waiting (its CPU counts)."""
    from customers.models import Event

    deadline = time.monotonic() + 120
    while Event.objects.filter(handed_over_at=None).exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--singles", type=int, default=20_000, help="single /v1/track requests")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--gzip", action="store_true", help="gzip request bodies")
    parser.add_argument("--start-server", action="store_true", help="start web + worker here")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.events < args.batch or args.batch < 1:
        raise SystemExit("bench: --events must be at least --batch, and --batch at least 1")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} cores, load average before {os.getloadavg()[0]:.1f}")

    import django

    django.setup()
    from customers.services.api_keys import api_key_create

    _, write_key = api_key_create(name="bench", scopes=["ingest"])
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()

    from django.db import connection

    server = None
    url = args.url
    if args.start_server:
        server = start_server(args.port)
        url = f"http://127.0.0.1:{args.port}"
    # Only the server started here is counted: with --url, web and worker are unknown.
    root_pid = server.pid if server is not None else None
    database = connection.settings_dict["NAME"]
    try:
        run = uuid.uuid4().hex[:8]
        messages = build_messages(args.events, args.customers, run)
        encode = (lambda b: gzip_module.compress(b, 1)) if args.gzip else (lambda b: b)
        bodies = [
            encode(orjson.dumps({"batch": messages[i : i + args.batch]}))
            for i in range(0, len(messages), args.batch)
        ]
        # Warm up: profiles of the customers exist, as they would in a running shop.
        post_all(
            url,
            auth,
            bodies[: max(1, args.customers // args.batch)],
            "/v1/batch",
            args.clients,
            args.gzip,
        )
        rest = bodies[max(1, args.customers // args.batch) :]
        sent = sum(1 for _ in rest) * args.batch
        with CpuMeter(root_pid=root_pid, database=database) as meter:
            seconds = post_all(url, auth, rest, "/v1/batch", args.clients, args.gzip)
            batch_rate = sent / seconds
            print(f"batch: {sent} events in {seconds:.1f} s = {batch_rate:,.0f} events/s")
            _settle()
        print("  " + meter.report(units=sent, unit="event"))

        # The same shop's customers, now one event per request.
        singles = build_messages(args.singles, args.customers, run, id_prefix="s")
        single_bodies = [encode(orjson.dumps(message)) for message in singles]
        with CpuMeter(root_pid=root_pid, database=database) as meter:
            seconds = post_all(url, auth, single_bodies, "/v1/track", args.clients, args.gzip)
            single_rate = len(single_bodies) / seconds
            print(
                f"single: {len(single_bodies)} requests in {seconds:.1f} s"
                f" = {single_rate:,.0f} requests/s"
            )
            _settle()
        print("  " + meter.report(units=len(single_bodies), unit="request"))

        floor = copy_floor(messages[: min(len(messages), 100_000)])
        print(f"floor: raw COPY into the same PostgreSQL = {floor:,.0f} rows/s")
        print(f"ratio: batch ingest / raw COPY = {batch_rate / floor:.3f}")
        print(
            f"targets: batch >= 10,000 events/s ({batch_rate / 10_000:.2f}x), "
            f"single >= 1,500 requests/s ({single_rate / 1_500:.2f}x)"
        )
    finally:
        if server is not None:
            os.killpg(server.pid, 2)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
