"""Refreshing model scores, and the segments whose rules use them."""

import datetime as dt

from django.utils import timezone

from segments.ml.training import customers_score, model_drift_check
from segments.models import ModelVersion, Segment
from segments.rules import rule_dependencies
from segments.services.memberships import RULE_KINDS, segment_recompute


def scores_refresh(*, kind: str, now: dt.datetime | None = None) -> int:
    """Score all customers with the active model of ``kind``, check its features for drift,
    then recompute the segments that have a condition on that score; return how many
    customers were scored."""
    now = now or timezone.now()
    scored = customers_score(kind=kind, now=now)
    model_drift_check(model=ModelVersion.objects.get(kind=kind, is_active=True), now=now)
    for segment in Segment.objects.filter(kind__in=RULE_KINDS).order_by("pk"):
        if kind in rule_dependencies(segment.rules).score_kinds:
            segment_recompute(segment=segment, now=now)
    return scored
