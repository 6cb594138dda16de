import logging

from celery import shared_task

from segments.models import Segment
from segments.services.memberships import (
    RULE_KINDS,
    segment_recompute,
    segments_recompute_time_dependent,
)

logger = logging.getLogger(__name__)


@shared_task(name="segments.recompute")
def segment_recompute_task(segment_id: int) -> int:
    segment = Segment.objects.filter(pk=segment_id, kind__in=RULE_KINDS).first()
    if segment is None:
        return 0
    changes = segment_recompute(segment=segment)
    return changes.entered + changes.exited


@shared_task(name="segments.recompute_time_dependent")
def segments_recompute_time_dependent_task() -> int:
    return segments_recompute_time_dependent()


@shared_task(name="segments.models_train")
def models_train_task() -> int:
    """Retrain every kind of model; a kind without enough data is skipped (and logged)."""
    from segments.ml.registry import model_train_any
    from segments.ml.training import ModelTrainingError
    from segments.models import ModelVersion

    trained = 0
    for kind in ModelVersion.Kind.values:
        try:
            model_train_any(kind=kind)
        except ModelTrainingError as error:
            logger.info("model not trained", extra={"kind": kind, "reason": str(error)})
        else:
            trained += 1
    return trained


@shared_task(name="segments.models_score")
def models_score_task() -> int:
    """Score customers with every active model, then refresh the segments using scores."""
    from segments.ml.registry import model_outputs_refresh
    from segments.models import PROPENSITY_KINDS, ModelVersion

    # Recommendations are stored when they are trained; clusters take in new customers here.
    kinds = ModelVersion.objects.filter(
        is_active=True, kind__in=[*PROPENSITY_KINDS, ModelVersion.Kind.CLUSTERS]
    ).values_list("kind", flat=True)
    return sum(model_outputs_refresh(kind=kind) for kind in sorted(kinds))
