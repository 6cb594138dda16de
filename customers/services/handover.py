"""Handing new events to the reactors of other apps, exactly once each.

An event row is written with ``handed_over_at`` NULL. After commit, the request enqueues
a task carrying the new ids to the reactors; the reactors run in the transaction that
stamps ``handed_over_at``, under ``SKIP LOCKED``, so a task delivered twice, or a sweeper
that re-enqueues what a lost task left behind, cannot hand an event over twice.

Each task also takes every other event still waiting, in batches. So when a task is
already queued, a request need not queue another (a flag in Redis says so): under load
the reactors get hundreds of events per call instead of one task per request, and when
idle every request still gets its own task at once.
"""

import datetime as dt
import functools
import logging
from collections.abc import Sequence

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from customers.models import Event
from customers.reactors import reactors

logger = logging.getLogger(__name__)

HAND_OVER_CHUNK = 500
PENDING_LIMIT = 5_000
QUEUED_FLAG = "customers:hand-over-queued"
QUEUED_FLAG_SECONDS = 30  # a lost task's flag expires, and the next request queues anew
INGEST_QUEUE = "ingest"
SWEEP_LIMIT = 20_000


def events_enqueue_hand_over(*, event_ids: Sequence[int]) -> None:
    """After the current transaction commits, enqueue the hand-over of these events."""
    ids = list(event_ids)
    transaction.on_commit(lambda: _publish(ids, coalesce=True))


@functools.cache
def _flag_client(location: str) -> redis.Redis:
    return redis.Redis.from_url(location)


def _claim_queued_flag() -> bool:
    """True when this request should queue a task: none is known to be queued."""
    from config.celery import app

    if app.conf.task_always_eager:
        return True
    try:
        # What cache.add does, on one client kept per process: the cache builds a client
        # per call, which cost a third of a web process's time on single-event requests.
        client = _flag_client(settings.CACHES["default"]["LOCATION"])
        key = cache.make_and_validate_key(QUEUED_FLAG)
        return bool(client.set(key, 1, nx=True, ex=QUEUED_FLAG_SECONDS))
    except Exception:
        return True


def _release_queued_flag() -> None:
    try:
        cache.delete(QUEUED_FLAG)
    except Exception:
        logger.warning("could not clear the hand-over flag; it expires by itself")


def _publish(event_ids: list[int], *, coalesce: bool = False) -> None:
    from customers.tasks import events_hand_over_task

    if coalesce and not _claim_queued_flag():
        return  # the queued task takes these events too: it hands over all that wait
    for start in range(0, len(event_ids), HAND_OVER_CHUNK):
        chunk = event_ids[start : start + HAND_OVER_CHUNK]
        try:
            events_hand_over_task.apply_async(args=[chunk], retry=False)
        except Exception:
            # The events are safe in PostgreSQL: the sweeper will enqueue them again.
            logger.warning(
                "could not enqueue event hand-over; the sweeper will retry",
                extra={"event_count": len(chunk), "first_event_id": chunk[0]},
            )


def _queued_hand_overs() -> int:
    """Messages waiting in the ingest queue (0 when the broker cannot say)."""
    from config.celery import app

    if app.conf.task_always_eager:  # tasks run in-process: there is no queue to wait for
        return 0
    try:
        with app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=INGEST_QUEUE, passive=True)
            return declared.message_count
    except Exception:
        return 0


def _claim(queryset, limit: int) -> list[Event]:
    return list(
        queryset.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer")
        .filter(handed_over_at=None)[:limit]
    )


def _react(events: list[Event]) -> None:
    for reactor in reactors:
        reactor(events)
    Event.objects.filter(pk__in=[event.pk for event in events]).update(
        handed_over_at=timezone.now()
    )


def events_hand_over(*, event_ids: Sequence[int]) -> int:
    """Give these events, where not yet handed over, to every reactor; return how many."""
    handed = 0
    ids = sorted(set(event_ids))
    for start in range(0, len(ids), HAND_OVER_CHUNK):
        with transaction.atomic():
            chunk = ids[start : start + HAND_OVER_CHUNK]
            events = _claim(Event.objects.filter(pk__in=chunk).order_by("pk"), HAND_OVER_CHUNK)
            if events:
                _react(events)
                handed += len(events)
    return handed


def events_hand_over_pending(*, limit: int = PENDING_LIMIT) -> int:
    """Hand over whatever is waiting, oldest first, in batches; return how many."""
    handed = 0
    while handed < limit:
        with transaction.atomic():
            # Ordered as the partial index event_not_handed_over, which serves it.
            events = _claim(Event.objects.order_by("received_at"), HAND_OVER_CHUNK)
            if not events:
                break
            _react(events)
        handed += len(events)
    return handed


def events_hand_over_queued(*, event_ids: Sequence[int]) -> int:
    """What a hand-over task does: these events, then everything else waiting.

    The flag stays up while the task works, so requests meanwhile queue nothing; once it
    is down, one more pass takes what was committed while it was still up.
    """
    handed = events_hand_over(event_ids=event_ids) + events_hand_over_pending()
    _release_queued_flag()
    return handed + events_hand_over_pending()


def events_sweep(*, older_than: dt.timedelta | None = None) -> int:
    """Re-enqueue events acknowledged but still not handed over; return how many.

    While hand-over tasks are still queued the workers are merely behind, not missing
    work: sweeping then would only queue the same ids again, so the sweep waits.
    """
    if _queued_hand_overs() > 0:
        return 0
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.INGEST_SWEEP_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    ids = list(
        Event.objects.filter(handed_over_at=None, received_at__lte=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if ids:
        logger.info("sweeping events not handed over", extra={"event_count": len(ids)})
        _publish(ids)
    return len(ids)
