"""The timer tick: advance waiting enrolments whose time has come.

Claimed in batches with ``FOR UPDATE SKIP LOCKED``, so ticks running at the same moment
on several workers share the due rows and never move one twice. Enrolments of paused
journeys (``journey_paused``, kept by pause and resume) stay put until it resumes.
"""

import datetime as dt

from django.db import transaction

from journeys import clock
from journeys.engine import Timer
from journeys.models import Enrolment
from journeys.services.runner import enrolments_advance

TICK_BATCH = 500
TICK_MAX_BATCHES = 20


def enrolments_due_tick(
    *,
    now: dt.datetime | None = None,
    batch_size: int = TICK_BATCH,
    max_batches: int = TICK_MAX_BATCHES,
) -> int:
    """Advance due enrolments, a batch per transaction; return how many were claimed."""
    now = now or clock.now()
    claimed = 0
    for _ in range(max_batches):
        with transaction.atomic():
            batch = list(
                Enrolment.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer")
                .filter(status="waiting", journey_paused=False, wake_at__lte=now)
                .order_by("wake_at")[:batch_size]
            )
            enrolments_advance(
                items=[(enrolment, Timer(enrolment.wake_at)) for enrolment in batch],
                now=now,
                actor="tick",
            )
        claimed += len(batch)
        if len(batch) < batch_size:
            break
    return claimed
