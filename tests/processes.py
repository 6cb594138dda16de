"""Real processes for end-to-end tests: a private Redis, gunicorn, a Celery worker.

They run against the test database of the current test session, so tests using them
need ``@pytest.mark.django_db(transaction=True)`` (the data must be committed to be seen).
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from config.embedded import PrivateRedis, database_url, free_port

__all__ = ["PrivateRedis", "Stack", "database_url", "free_port", "wait_until"]

BASE_DIR = Path(__file__).resolve().parent.parent


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 30, what: str = "condition"
) -> None:
    """Poll a condition that another process will make true (never a wait for time itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    """Web and worker processes of this checkout, pointed at the test database."""

    def __init__(self, workdir: Path, redis: PrivateRedis, **extra_env: str):
        self.workdir = workdir
        self.redis = redis
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "DEBUG": "true",
            "PYTHONPATH": str(BASE_DIR),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis.url,
            "LOG_FORMAT": "plain",
            "INGEST_GROUP_COMMIT": "true",
            **extra_env,
        }

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            command, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", queues: str = "celery,ingest,dispatch") -> None:
        self._spawn(
            name,
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--loglevel", "INFO", "--without-mingle", "--without-gossip",
             "--queues", queues,
             "--hostname", f"{name}-{os.getpid()}@%h"],
        )  # fmt: skip

    def start_web(self) -> str:
        port = free_port()
        self._spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--worker-class", "gthread"],
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url + "/healthz"), timeout=60, what="the web process")
        return url

    def call(self, task_name: str, args: list | None = None) -> None:
        """Enqueue a task by name, as ``celery call`` would, on this stack's broker."""
        import json

        command = [sys.executable, "-m", "celery", "-A", "config", "call", task_name]
        if args is not None:
            command += ["--args", json.dumps(args)]
        subprocess.run(command, env=self.env, cwd=BASE_DIR, check=True, capture_output=True)

    def stop(self, name: str, *, kill: bool = False) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.kill() if kill else process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
            return reply.status == 200
    except OSError:
        return False
