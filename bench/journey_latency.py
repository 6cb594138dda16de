"""Trigger-to-send latency: events at a steady rate through /v1/track into a live journey
whose first step sends an email, timed from the HTTP request to the SMTP sink.

    python bench/journey_latency.py                     # 100 events/s for 30 s
    python bench/journey_latency.py --rate 100 --seconds 10

Starts the product as ``make serve`` does (``python -m config.stack``: gunicorn, a Celery
worker, beat), with DEBUG off, on a database of its own (``jl_bench_latency``), a private
Redis and an SMTP sink on 127.0.0.1. Each event is a ``Signed Up`` of a distinct customer
who agreed to the topic; the journey ``Signed Up`` -> send email -> exit. A message is
matched to its request by the recipient address. Prints count, p50 / p90 / p99 / max, the
target (p99 <= 1 s), missing and duplicate messages (both must be 0), and, when
``bench/process_cpu.py`` is there, CPU milliseconds per message of each process.
"""

import argparse
import base64
import datetime as dt
import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

from bench.support import (  # noqa: E402
    PrivateRedis,
    SinkProcess,
    database_url,
    free_port,
    percentile,
    setup_database,
)

DATABASE = "jl_bench_latency"
TOPIC = "bench-welcome"
EVENT = "Signed Up"
TARGET_P99 = 1.0


def seed(customers: int, run: str) -> tuple[str, list[str]]:
    """Customers with email consent, a published template, the live journey; returns the
    write key and the external ids."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import MessageTemplate, TemplateContent, TemplateVersion
    from consent.models import Topic
    from consent.services.ledger import consent_import
    from customers.services.api_keys import api_key_create
    from journeys.models import Journey
    from journeys.services.journeys import journey_archive, journey_create, journey_publish

    for journey in Journey.objects.exclude(status=Journey.Status.ARCHIVED):
        journey_archive(journey=journey)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (external_id, email, phone, timezone, locale, traits,"
            " first_seen, last_seen, created_at, updated_at) "
            "SELECT %s || n, %s || n || '@bench.test', '', 'Europe/London', 'en',"
            " jsonb_build_object('first_name', 'Reader ' || n), now(), now(), now(), now() "
            "FROM generate_series(0, %s - 1) AS n RETURNING id, external_id",
            [f"lat-{run}-", f"lat-{run}-", customers],
        )
        rows = cursor.fetchall()
    Topic.objects.update_or_create(
        key=TOPIC,
        defaults={"name": "Bench welcome", "channels": ["email"], "default": Topic.Default.OPT_IN},
    )
    consent_import(
        rows=[
            {"customer_id": customer_id, "channel": "email", "topic": TOPIC, "action": "grant"}
            for customer_id, _ in rows
        ]
    )
    template = MessageTemplate.objects.create(name=f"Bench welcome {run}", channel="email")
    version = TemplateVersion.objects.create(
        template=template, number=1, published_at=timezone.now()
    )
    TemplateContent.objects.create(
        version=version,
        locale="en",
        subject="Welcome, {{ customer.first_name }}",
        html="<p>Hello {{ customer.first_name }}, welcome aboard.</p>",
    )
    graph = {
        "schema": 1,
        "steps": [
            {
                "id": "start",
                "kind": "trigger",
                "config": {"type": "event", "event": EVENT},
                "exits": {"next": "hello"},
            },
            {
                "id": "hello",
                "kind": "send",
                "config": {"channel": "email", "template": template.pk, "topic": TOPIC},
                "exits": {"next": "done"},
            },
            {"id": "done", "kind": "exit"},
        ],
    }
    journey = journey_create(name=f"Bench welcome {run}", graph=graph)
    journey_publish(journey=journey, by="bench")
    _, write_key = api_key_create(name=f"bench {run}", scopes=["ingest"])
    return write_key, [external_id for _, external_id in rows]


def start_stack(port: int, environment: dict, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "config.stack", "--port", str(port)],
        cwd=BASE_DIR,
        env=environment,
        stdout=open(log, "wb"),  # noqa: SIM115 - closed when the process ends
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("bench: the stack exited:\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    raise SystemExit("bench: the web process did not start:\n" + log.read_text()[-3000:])


def send_at_rate(
    port: int, auth: str, user_ids: list[str], rate: float, clients: int, run: str
) -> dict[str, float]:
    """POST one Signed Up per user id, the i-th at start + i / rate; returns, per
    recipient address, the monotonic time its request was sent."""
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()
    started = time.monotonic() + 0.2
    headers = {"Authorization": auth, "Content-Type": "application/json"}

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for index in range(offset, len(user_ids), clients):
            user_id = user_ids[index]
            body = orjson.dumps(
                {
                    "userId": user_id,
                    "event": EVENT,
                    "properties": {"plan": "trial"},
                    "messageId": f"{run}-{index}",
                    "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                }
            )
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the load generator's pacing, not a wait in a test
            at = time.monotonic()
            wall = time.time()
            try:
                connection.request("POST", "/v1/track", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = f"{type(error).__name__}"
            with lock:
                sent[f"{user_id}@bench.test"] = at
                sent_wall[user_id] = wall
                if status != 200:
                    failures.append(str(status))
        connection.close()

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"bench: {len(failures)} requests failed, first: {failures[0]}")
    return sent, sent_wall


def stages(sent_wall: dict[str, float]) -> list[str]:
    """Where the time goes, from the rows' own timestamps (same host clock as the
    client's wall clock): median and p99 seconds from the request to each stage."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.external_id, extract(epoch FROM e.received_at),
                   extract(epoch FROM e.handed_over_at), extract(epoch FROM n.entered_at),
                   extract(epoch FROM m.created_at), extract(epoch FROM m.sent_at)
            FROM customers_customer c
            JOIN customers_event e ON e.customer_id = c.id AND e.name = %s
            LEFT JOIN journeys_enrolment n ON n.customer_id = c.id
            LEFT JOIN campaigns_message m ON m.enrolment_id = n.id
            WHERE c.external_id = ANY(%s)
            """,
            [EVENT, list(sent_wall)],
        )
        rows = cursor.fetchall()
    names = ["event stored", "handed over", "enrolled", "message row", "sent (provider ok)"]
    lines = []
    for column, name in enumerate(names, start=1):
        values = sorted(
            float(row[column]) - sent_wall[row[0]] for row in rows if row[column] is not None
        )
        lines.append(
            f"  {name:<19}: p50 {percentile(values, 0.5) * 1000:7.0f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:7.0f} ms"
        )
    return lines


def wait_for(handler: SinkProcess, expected: int, stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while handler.count() < expected and time.monotonic() < deadline:
        if stack.poll() is not None:
            raise SystemExit("bench: the stack exited during the run")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100, help="events per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8, help="HTTP client threads")
    parser.add_argument("--warm-up", type=int, default=50, help="events before measuring")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for mail")
    arguments = parser.parse_args()
    measured = int(arguments.rate * arguments.seconds)

    (BASE_DIR / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="jl-latency-", dir=BASE_DIR / "var"))
    redis = PrivateRedis(workdir)
    redis.start()
    # This process talks to the private Redis too: set before settings are read.
    os.environ["REDIS_URL"] = redis.url
    sink = handler = SinkProcess()
    stack = None
    try:
        setup_database(DATABASE)
        run = dt.datetime.now(dt.UTC).strftime("%H%M%S") + secrets.token_hex(2)
        write_key, user_ids = seed(arguments.warm_up + measured, run)
        auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        port = free_port()
        environment = {
            **os.environ,
            "PYTHONPATH": str(BASE_DIR),
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis.url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "DEFAULT_FROM_EMAIL": "Shop <shop@bench.test>",
            "LOG_LEVEL": "WARNING",
        }
        stack = start_stack(port, environment, workdir / "stack.log")

        # Warm up: every web and worker process has imported, connected and compiled.
        warm, rest = user_ids[: arguments.warm_up], user_ids[arguments.warm_up :]
        send_at_rate(port, auth, warm, arguments.rate, arguments.clients, run + "w")
        wait_for(handler, len(warm), stack, arguments.drain)
        if handler.count() < len(warm):
            raise SystemExit(
                f"bench: only {handler.count()} of {len(warm)} warm-up messages arrived; "
                f"see {workdir / 'stack.log'}:\n" + (workdir / "stack.log").read_text()[-3000:]
            )
        handler.reset()

        cpu = _cpu_probe(stack.pid)
        sent, sent_wall = send_at_rate(port, auth, rest, arguments.rate, arguments.clients, run)
        wait_for(handler, len(rest), stack, arguments.drain)
        time.sleep(2)  # a late duplicate, if any, arrives before counting
        cpu_line = cpu(len(rest)) if cpu else ""
        arrivals = handler.arrivals()
        latencies = sorted(
            times[0] - sent[address] for address, times in arrivals.items() if address in sent
        )
        missing = sum(1 for address in sent if address not in arrivals)
        duplicates = sum(len(times) - 1 for times in arrivals.values())
        strangers = sorted(address for address in arrivals if address not in sent)
        p99 = percentile(latencies, 0.99)
        command = " ".join(["python", "bench/journey_latency.py", *sys.argv[1:]])
        print(f"command                : {command}")
        print(
            f"load                   : {len(rest)} Signed Up events at {arguments.rate:g}/s "
            f"through /v1/track ({arguments.clients} clients), journey trigger -> email"
        )
        print(f"messages received      : {len(latencies)}")
        print(
            "trigger-to-send latency: "
            + ", ".join(
                f"{name} {percentile(latencies, share) * 1000:.0f} ms"
                for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
            )
            + f", max {latencies[-1] * 1000 if latencies else float('nan'):.0f} ms"
        )
        verdict = "met" if p99 <= TARGET_P99 else "NOT met"
        print(f"target                 : p99 <= {TARGET_P99:.0f} s: {verdict}")
        print(f"missing                : {missing}")
        print(f"duplicates             : {duplicates}")
        print(f"unexpected recipients  : {len(strangers)} {' '.join(strangers[:3])}")
        if cpu_line:
            print(cpu_line)
        print("stages (from the rows' timestamps, since the request):")
        print("\n".join(stages(sent_wall)))
    finally:
        if stack is not None and stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
        sink.stop()
        redis.stop()
        if (workdir / "stack.log").exists():  # kept for a look after the run
            shutil.copy(workdir / "stack.log", BASE_DIR / "var" / "bench-latency-stack.log")
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_probe(root_pid: int):
    """A function printing CPU ms per message since now, or None without process_cpu."""
    try:
        from bench.process_cpu import cpu_report, cpu_snapshot
    except ImportError:
        return None
    from django.db import connection

    database = connection.settings_dict["NAME"]
    before = cpu_snapshot(root_pid=root_pid, database=database)

    def report(units: int | None = None) -> str:
        return cpu_report(
            before,
            cpu_snapshot(root_pid=root_pid, database=database),
            units=units or 1,
            unit="message",
        )

    return report


if __name__ == "__main__":
    main()
