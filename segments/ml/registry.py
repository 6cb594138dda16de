"""Training any kind of model by its name, for the train command and the beat task."""

import datetime as dt

from segments.ml.clusters import clusters_train
from segments.ml.recommendations import recommendations_train
from segments.ml.training import model_train
from segments.models import ModelVersion


def model_train_any(
    *, kind: str, now: dt.datetime | None = None, activate: bool = True, horizon_days: int = 30
) -> ModelVersion:
    """Train a new version of ``kind``; clusters and recommendations are also assigned to
    every customer when activated (they have no separate scoring step)."""
    if kind == ModelVersion.Kind.CLUSTERS:
        return clusters_train(now=now, activate=activate)
    if kind == ModelVersion.Kind.RECOMMENDATIONS:
        return recommendations_train(now=now, activate=activate)
    return model_train(kind=kind, now=now, horizon_days=horizon_days, activate=activate)
