"""``manage.py demo_load --url http://127.0.0.1:8000``: the demo store, through the ingest API.

Creates (once) the ``admin`` superuser and a write key, generates the synthetic retail store
and posts it to the running server's ``/v1/batch``, then prints where to look and how to
sign in. Rerunning is safe: the same seed gives the same ``messageId``s, stored once.
"""

import datetime as dt
import logging
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config import embedded
from customers.demo.credentials import demo_credentials_ensure
from customers.demo.sender import DemoSendError, check_reachable, send_messages
from customers.demo.steps import DemoRun, demo_steps
from customers.demo.store import generate_store
from customers.models import Event

# Upper bounds keep a typo from generating for hours.
LIMITS = {"customers": 1_000_000, "days": 3650, "concurrency": 32}


class Command(BaseCommand):
    help = "Load the demo retail store into a running Journeyline through its ingest API."

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="the running Journeyline (default http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--customers",
            default=2000,
            type=int,
            help="how many customers (default 2,000)",
        )
        parser.add_argument(
            "--days",
            default=90,
            type=int,
            help="how many days of history, ending now (default 90)",
        )
        parser.add_argument("--seed", default=1, type=int, help="same seed, same store (default 1)")
        parser.add_argument(
            "--concurrency",
            default=4,
            type=int,
            help="connections posting at once (default 4)",
        )
        parser.add_argument(
            "--credentials",
            default=str(embedded.VAR_DIR / "demo-credentials.json"),
            help="where the admin password and write key are kept between runs",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar while sending"
        )

    def handle(self, *args, **options):
        # One log line per request would bury the progress bar.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        for name, maximum in LIMITS.items():
            if not 1 <= options[name] <= maximum:
                raise CommandError(
                    f"--{name} must be between 1 and {maximum:,}, not {options[name]}"
                )
        url = options["url"].rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CommandError(
                f"--url must be an http(s) URL such as http://127.0.0.1:8000, not {url!r}"
            )
        try:
            check_reachable(url)
        except DemoSendError as error:
            raise CommandError(f"{error} (is `make serve` running?)") from None

        try:
            credentials = demo_credentials_ensure(path=Path(options["credentials"]))
        except ValueError as error:
            raise CommandError(str(error)) from None

        self.stdout.write(
            f"Generating the demo store: {options['customers']:,} customers over "
            f"{options['days']} days (seed {options['seed']})"
        )
        store = generate_store(
            customers=options["customers"],
            days=options["days"],
            seed=options["seed"],
            now=dt.datetime.now(dt.UTC),
        )
        messages = list(store.messages())
        stored_before = self._stored(credentials.api_key_id)
        with tqdm(
            total=len(messages),
            unit=" events",
            unit_scale=True,
            desc="Sending through /v1/batch",
            disable=options["no_progress"],
            file=sys.stderr,
        ) as progress:
            try:
                sent = send_messages(
                    url=url,
                    write_key=credentials.write_key,
                    messages=messages,
                    concurrency=options["concurrency"],
                    on_sent=progress.update,
                )
            except DemoSendError as error:
                raise CommandError(str(error)) from None

        new = self._stored(credentials.api_key_id) - stored_before

        extra_lines: list[str] = []
        run = DemoRun(url=url, store=store, credentials=credentials)
        for name, step in demo_steps.items():
            self.stdout.write(f"Adding {name} to the demo")
            try:
                extra_lines += step(run)
            except Exception as error:
                raise CommandError(f"the {name} part of the demo failed: {error}") from error
        self.stdout.write(
            self._summary(url, credentials, store, sent=sent, new=new, extra_lines=extra_lines)
        )

    @staticmethod
    def _stored(api_key_id: int) -> int:
        # The server stores into this same database: what it stored for the demo's key.
        return Event.objects.filter(api_key_id=api_key_id).count()

    def _summary(
        self, url, credentials, store, *, sent: int, new: int, extra_lines: list[str]
    ) -> str:
        password = credentials.password or "(unchanged: set by someone else, not by the demo)"
        lines = [
            "Journeyline demo is ready",
            "",
            f"Sent {sent:,} events for {len(store.customers):,} customers "
            f"({len(store.products)} products, {len(store.promotions)} promotions):",
            f"{new:,} stored now, {sent - new:,} already there (stored once by messageId).",
            "",
            f"Admin         {url}/admin/",
            f"  username    {credentials.username}",
            f"  password    {password}",
            f"API docs      {url}/api/docs/",
            f"API schema    {url}/api/schema/",
            f"Health        {url}/healthz",
            f"Ingest        {url}/v1/batch  (Segment HTTP API)",
            f"  write key   {credentials.write_key}",
            *extra_lines,
            "",
            "Under `make demo`, Ctrl-C stops web, workers and beat.",
        ]
        width = max(len(line) for line in lines)
        top = "┌" + "─" * (width + 2) + "┐"
        bottom = "└" + "─" * (width + 2) + "┘"
        body = [f"│ {line.ljust(width)} │" for line in lines]
        return "\n".join([top, *body, bottom])
