"""Training any kind of model by its name, for the train command and the beat task."""

import datetime as dt

from django.utils import timezone

from segments.ml.clusters import clusters_assign, clusters_train
from segments.ml.recommendations import recommendations_train
from segments.ml.training import model_train
from segments.models import ModelVersion, Segment
from segments.rules import rule_dependencies
from segments.services.memberships import RULE_KINDS, segment_recompute
from segments.services.scores import scores_refresh


def model_train_any(
    *, kind: str, now: dt.datetime | None = None, activate: bool = True, horizon_days: int = 30
) -> ModelVersion:
    """Train a new version of ``kind``; clusters and recommendations are also assigned to
    every customer when activated (they have no separate scoring step)."""
    if kind == ModelVersion.Kind.CLUSTERS:
        model = clusters_train(now=now, activate=activate)
        if activate:
            _segments_recompute(kind=kind, now=model.trained_at)
        return model
    if kind == ModelVersion.Kind.RECOMMENDATIONS:
        return recommendations_train(now=now, activate=activate)
    return model_train(kind=kind, now=now, horizon_days=horizon_days, activate=activate)


def model_outputs_refresh(*, kind: str, now: dt.datetime | None = None) -> int:
    """Score (or, for clusters, assign) every customer with the active model of ``kind``,
    then recompute the segments that read it; return how many customers were done."""
    if kind == ModelVersion.Kind.CLUSTERS:
        now = now or timezone.now()
        assigned = clusters_assign(now=now)
        _segments_recompute(kind=kind, now=now)
        return assigned
    return scores_refresh(kind=kind, now=now)


def _segments_recompute(*, kind: str, now: dt.datetime) -> None:
    """Recompute the segments whose rules read this kind's outputs."""
    for segment in Segment.objects.filter(kind__in=RULE_KINDS).order_by("pk"):
        if kind in rule_dependencies(segment.rules).score_kinds:
            segment_recompute(segment=segment, now=now)
