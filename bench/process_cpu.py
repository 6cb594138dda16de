"""CPU time of every process a benchmark involves, read from /proc (Linux only).

Wall time on a shared machine says little; CPU time per request of each process (web,
worker, PostgreSQL, the client itself) says where the cost is and survives other load.

    with CpuMeter(root_pid=server.pid, database="journeyline") as meter:
        ...  # the load
    print(meter.report(units=20_000, unit="request"))
"""

import os
import resource
import threading
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent id, user + system seconds) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in brackets and may hold spaces: split after the last ")".
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _role(cmdline: str, database: str) -> str | None:
    if "gunicorn" in cmdline or "granian" in cmdline:
        return "web"
    if "celery" in cmdline and " worker" in cmdline:
        return "worker"
    if "celery" in cmdline and " beat" in cmdline:
        return "beat"
    if cmdline.startswith("postgres: "):
        # Backends name their database; the background writers serve every database.
        parts = cmdline.split()
        if len(parts) >= 3 and parts[2] == database:
            return "postgres"
        if any(word in cmdline for word in ("walwriter", "background writer", "checkpointer")):
            return "pg-shared"
        return None
    return None


def _descendants(root: int | None, parents: dict[int, int]) -> set[int]:
    found = {root} if root is not None else set()
    grew = True
    while grew:
        before = len(found)
        found |= {pid for pid, parent in parents.items() if parent in found}
        grew = len(found) > before
    return found


def _per_process(root_pid: int | None, database: str) -> dict[int, tuple[str, float]]:
    """pid -> (role, CPU seconds so far) of every process that plays a role."""
    stats = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (stat := _stat(pid)) is not None:
            stats[int(pid)] = stat
    ours = _descendants(root_pid, {pid: stat[0] for pid, stat in stats.items()})
    found = {}
    for pid, (_, seconds) in stats.items():
        role = _role(_cmdline(str(pid)), database)
        if role is None or (role in ("web", "worker", "beat") and pid not in ours):
            continue
        found[pid] = (role, seconds)
    return found


def _client_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU spent during a phase per role: web, worker, beat (descendants of root_pid),
    postgres (backends of this database), pg-shared (the WAL and background writers, which
    serve every database: other load on the server shows there) and client (this one).

    Processes are sampled every half second, so one that exits during the phase (a
    database backend closed after CONN_MAX_AGE) still counts up to its last sample.
    """

    def __init__(self, *, root_pid: int | None, database: str, every: float = 0.5) -> None:
        self.root_pid, self.database, self.every = root_pid, database, every
        self._stop = threading.Event()

    def __enter__(self) -> "CpuMeter":
        self.first = _per_process(self.root_pid, self.database)
        self.last = dict(self.first)
        self.client_first = _client_seconds()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()
        return self

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.every):
            self.last.update(_per_process(self.root_pid, self.database))
        # The sampling is the meter's cost, not the client's: it is taken off below.
        self.sampling = time.thread_time()

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.last.update(_per_process(self.root_pid, self.database))
        self.client = _client_seconds() - self.client_first - self.sampling

    def report(self, *, units: int, unit: str) -> str:
        """One line: CPU milliseconds per unit for each role and in total."""
        spent = {"client": self.client}
        for pid, (role, seconds) in self.last.items():
            already = self.first.get(pid, (role, 0.0))[1]
            spent[role] = spent.get(role, 0.0) + max(0.0, seconds - already)
        roles = [
            r for r in ("web", "worker", "postgres", "client", "beat", "pg-shared") if r in spent
        ]
        parts = [f"{role} {spent[role] * 1000 / units:.3f}" for role in roles]
        total = sum(spent.values()) * 1000 / units
        return f"CPU ms per {unit}: " + ", ".join(parts) + f", total {total:.3f}"
