"""The time journeys run on: real time plus an offset stored in the database, so every
process (web, workers, beat) agrees when a test or the demo moves the clock forward."""

import datetime as dt

from django.db.models import F
from django.utils import timezone

from journeys.models import ClockOffset

_ROW_ID = 1


def offset() -> dt.timedelta:
    seconds = (
        ClockOffset.objects.filter(pk=_ROW_ID).values_list("offset_seconds", flat=True).first()
    )
    return dt.timedelta(seconds=seconds or 0)


def now() -> dt.datetime:
    return timezone.now() + offset()


def clock_advance(*, by: dt.timedelta) -> dt.datetime:
    """Move the clock forward (never back: waits already due must stay due)."""
    if by < dt.timedelta(0):
        raise ValueError("the clock only moves forward")
    row, _ = ClockOffset.objects.get_or_create(pk=_ROW_ID)
    ClockOffset.objects.filter(pk=row.pk).update(
        offset_seconds=F("offset_seconds") + by.total_seconds()
    )
    return now()


def clock_reset() -> None:
    ClockOffset.objects.filter(pk=_ROW_ID).delete()
