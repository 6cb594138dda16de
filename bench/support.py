"""Pieces the end-to-end benches share: a database of their own, a private Redis, a free
port, and an SMTP sink on 127.0.0.1 that notes when each message arrives.

Import it after ``bench/`` put the repository on ``sys.path`` and set
``DJANGO_SETTINGS_MODULE`` (every bench does so first).
"""

import threading
import time
from collections import defaultdict
from pathlib import Path

from config.embedded import PrivateRedis, database_url, free_port

__all__ = [
    "ArrivalHandler",
    "PrivateRedis",
    "SinkProcess",
    "database_url",
    "free_port",
    "percentile",
    "setup_database",
    "start_sink",
]

BASE_DIR = Path(__file__).resolve().parent.parent


def setup_database(name: str, *, migrate: bool = True) -> None:
    """Use the database ``name`` on the configured server, never the development data:
    Django's test-database creation, kept between runs (``migrate=False`` skips even the
    check that it is migrated). DEBUG goes off as in production: with it every query's
    SQL is formatted and kept."""
    import django
    from django.conf import settings

    settings.DATABASES["default"]["TEST"] = {"NAME": name}
    if not migrate:
        settings.DATABASES["default"]["NAME"] = name
    django.setup()
    settings.DEBUG = False
    if migrate:
        from django.db import connection

        # serialize=False: the test runner would otherwise dump the whole database to JSON.
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, keepdb=True, serialize=False
        )


class ArrivalHandler:
    """aiosmtpd handler: per recipient, the ``time.monotonic()`` of each arrival."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[str, list[float]] = defaultdict(list)

    async def handle_DATA(self, server, session, envelope):
        arrived = time.monotonic()
        with self.lock:
            for address in envelope.rcpt_tos:
                self.arrivals[address.lower()].append(arrived)
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return sum(len(times) for times in self.arrivals.values())

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()


def start_sink(handler) -> "Controller":  # noqa: F821
    """An SMTP server on 127.0.0.1 (a free port) with ``handler``; ``.stop()`` it."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    sink = Controller(handler, hostname="127.0.0.1", port=free_port())
    sink.start()
    return sink


class SinkProcess:
    """An ``ArrivalHandler`` sink in a process of its own, so a busy bench process (the
    load generator's threads) does not slow the "provider" down. Arrivals are
    ``time.monotonic()`` of the receiving process: CLOCK_MONOTONIC is one clock for every
    process on the machine, so they compare with the bench's own."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._commands = context.Queue()
        self._replies = context.Queue()
        self._process = context.Process(target=self._serve, daemon=True)
        self._process.start()
        self.port = self._replies.get(timeout=30)

    def _serve(self) -> None:
        handler = ArrivalHandler()
        sink = start_sink(handler)
        self._replies.put(sink.port)
        try:
            while (command := self._commands.get()) != "stop":
                if command == "count":
                    self._replies.put(handler.count())
                elif command == "arrivals":
                    with handler.lock:
                        self._replies.put(dict(handler.arrivals))
                elif command == "reset":
                    handler.reset()
                    self._replies.put(True)
        finally:
            sink.stop()

    def _ask(self, command: str):
        self._commands.put(command)
        return self._replies.get(timeout=60)

    def count(self) -> int:
        return self._ask("count")

    def arrivals(self) -> dict[str, list[float]]:
        return self._ask("arrivals")

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        self._commands.put("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (``share`` in [0, 1])."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-int(share * 1000) * len(sorted_values) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]
