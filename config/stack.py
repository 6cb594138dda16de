"""Run the whole product in one terminal: web, Celery workers and beat. One Ctrl-C stops all.

``python -m config.stack [--port 8000] [--demo]``: with ``--demo`` it also loads the demo
data through the ingest API once the web process answers, and prints where to look.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _environment(port: int) -> dict[str, str]:
    environment = dict(os.environ)
    # Links in messages and demo output point at this server unless told otherwise.
    environment.setdefault("JOURNEYLINE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    if not environment.get("EMAIL_BACKEND") and not environment.get("EMAIL_HOST"):
        # Locally, with no mail server configured, emails are written to var/mail/.
        environment["EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
        environment.setdefault("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
    environment.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    environment["PYTHONPATH"] = str(BASE_DIR)
    if not environment.get("DATABASE_URL") or not environment.get("REDIS_URL"):
        # Start the embedded servers once here, so the three processes find them running.
        from config import embedded

        embedded.postgres_settings()
        environment.setdefault("REDIS_URL", embedded.redis_url())
    return environment


def worker_command(kind: str, *, log_level: str = "WARNING") -> list[str]:
    """A Celery worker of ``make serve``: "worker" takes ingest hand-overs, journeys and
    ticks; "dispatch" takes only message dispatch, so a broadcast of a million messages
    never holds up an ingest hand-over or a journey step (and their bursts never hold up
    a broadcast). The broadcast benchmark starts its workers with this command too."""
    if kind == "dispatch":
        concurrency = os.environ.get("CELERY_DISPATCH_CONCURRENCY", "2")
        queues = os.environ.get("CELERY_DISPATCH_QUEUES", "dispatch")
        # A dispatch task sends hundreds of messages: reserving more than one at a time
        # would leave a task waiting behind a busy process while another process idles.
        prefetch = "1"
    else:
        concurrency = os.environ.get("CELERY_CONCURRENCY", "2")
        queues = os.environ.get("CELERY_QUEUES", "celery,ingest")
        prefetch = "4"
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", log_level,
        "--concurrency", concurrency, "--queues", queues, "--prefetch-multiplier", prefetch,
        "--hostname", f"{kind}@%h",
    ]  # fmt: skip


def _commands(port: int) -> dict[str, list[str]]:
    python = sys.executable
    # Threads of one process share an ingest commit (group commit): on 2 cores, 2 processes
    # of 16 threads cost 0.74 ms CPU per single /v1/track in all, 4 of 8 cost 1.2 ms.
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    # Task-by-task lines would bury the demo's progress bar and summary; INFO on request.
    log_level = os.environ.get("CELERY_LOG_LEVEL", "WARNING")
    return {
        # granian: its HTTP handling is Rust, about 0.04 ms of CPU per request against
        # 0.4 ms for gunicorn's gthread worker, measured with the ingest benchmark.
        "web": [
            python, "-m", "granian", "--interface", "wsgi", "config.wsgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", workers,
            "--blocking-threads", os.environ.get("WEB_THREADS", "16"), "--no-ws", "--http", "1",
            "--respawn-failed-workers", "--workers-kill-timeout", "5",
            *(["--access-log"] if os.environ.get("ACCESS_LOG") else []),
        ],
        "worker": worker_command("worker", log_level=log_level),
        "dispatch": worker_command("dispatch", log_level=log_level),
        "beat": [
            python, "-m", "celery", "-A", "config", "beat", "--loglevel", log_level,
            "--schedule", str(BASE_DIR / "var" / "celerybeat-schedule"),
        ],
    }  # fmt: skip


def _wait_for_health(port: int, processes: dict, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes.values()):
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    # Each process leads its own group: end what is left of it (web workers still starting
    # when their parent stopped would otherwise live on, orphaned, holding the port).
    for process in processes.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo", action="store_true", help="load demo data and print URLs")
    args = parser.parse_args(argv)

    environment = _environment(args.port)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=environment, check=True)
    subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], env=environment, check=True)

    processes: dict[str, subprocess.Popen] = {}
    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, command in _commands(args.port).items():
            # Own process group: the terminal's Ctrl-C reaches us, and we stop the children.
            processes[name] = subprocess.Popen(
                command, env=environment, cwd=BASE_DIR, start_new_session=True
            )
        if not _wait_for_health(args.port, processes):
            _say("journeyline: the web process did not become healthy; see the log above")
            return 1
        base_url = f"http://127.0.0.1:{args.port}"
        if args.demo:
            loaded = subprocess.run(
                [*manage, "demo_load", "--url", base_url], env=environment, check=False
            )
            if loaded.returncode != 0:
                _say("journeyline: loading the demo data failed; see the lines above")
                return loaded.returncode
        else:
            _say(f"Journeyline is running at {base_url}/admin/  (Ctrl-C stops it)")
        while not interrupted:
            for name, process in processes.items():
                if process.poll() is not None:
                    _say(f"journeyline: the {name} process exited ({process.returncode})")
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        _say("journeyline: stopping web, workers and beat")
        _stop(processes)


if __name__ == "__main__":
    sys.exit(main())
