from celery import shared_task

from segments.models import Segment
from segments.services.memberships import (
    segment_recompute,
    segments_recompute_time_dependent,
)


@shared_task(name="segments.recompute")
def segment_recompute_task(segment_id: int) -> int:
    segment = Segment.objects.filter(pk=segment_id, kind=Segment.Kind.DYNAMIC).first()
    if segment is None:
        return 0
    changes = segment_recompute(segment=segment)
    return changes.entered + changes.exited


@shared_task(name="segments.recompute_time_dependent")
def segments_recompute_time_dependent_task() -> int:
    return segments_recompute_time_dependent()
