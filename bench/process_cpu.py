"""CPU time of every process a benchmark involves, read from /proc (Linux only).

Wall time on a shared machine says little; CPU time per request of each process (web,
worker, PostgreSQL, the client itself) says where the cost is and survives other load.

    before = cpu_snapshot(root_pid=server.pid, database="journeyline")
    ...  # the load
    print(cpu_report(before, cpu_snapshot(...), units=20_000, unit="request"))
"""

import os
import resource
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


def cpu_snapshot(*, root_pid: int | None, database: str) -> dict[str, float]:
    """Seconds of CPU so far per role: web, worker, beat (descendants of root_pid),
    postgres (backends of this database), pg-shared (the WAL and background writers, which
    serve every database: other load on the server shows there) and client (this one)."""
    stats = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (stat := _stat(pid)) is not None:
            stats[int(pid)] = stat
    ours = _descendants(root_pid, {pid: stat[0] for pid, stat in stats.items()})
    totals: dict[str, float] = {}
    for pid, (_, seconds) in stats.items():
        role = _role(_cmdline(str(pid)), database)
        if role is None or (role in ("web", "worker", "beat") and pid not in ours):
            continue
        totals[role] = totals.get(role, 0.0) + seconds
    usage = resource.getrusage(resource.RUSAGE_SELF)
    totals["client"] = usage.ru_utime + usage.ru_stime
    return totals


def cpu_report(before: dict[str, float], after: dict[str, float], *, units: int, unit: str) -> str:
    """One line: CPU milliseconds per unit for each role and in total."""
    roles = ["web", "worker", "postgres", "client", "beat", "pg-shared"]
    spent = {role: max(0.0, after.get(role, 0.0) - before.get(role, 0.0)) for role in roles}
    parts = [f"{role} {spent[role] * 1000 / units:.3f}" for role in roles if role in after]
    total = sum(spent.values()) * 1000 / units
    # pg-shared is listed last and is part of the total: on a quiet machine it is ours.
    return f"CPU ms per {unit}: " + ", ".join(parts) + f", total {total:.3f}"
