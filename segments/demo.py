"""What the segments app adds to ``make demo``: models trained on the store's history,
every customer scored, and a few segments a marketer would start from.

Runs before campaigns and journeys (INSTALLED_APPS order), so the win-back journey's high
churn segment finds scores. Safe to run again: a model kind that already has an active
version is not retrained (``segments_train`` does that), and existing segments are kept.
"""

from customers.demo.steps import DemoRun
from segments.ml.registry import model_outputs_refresh, model_train_any
from segments.ml.rfm import rfm_refresh
from segments.ml.training import ModelTrainingError
from segments.models import PROPENSITY_KINDS, ModelVersion, Segment
from segments.services.definitions import segment_create

K = ModelVersion.Kind
DEMO_SEGMENTS = [
    {
        "key": "demo-recent-buyers",
        "name": "Demo: bought in the last 30 days",
        "rules": {"event": {"name": "Order Completed", "within_days": 30}},
        "description": "At least one order in the last 30 days.",
    },
    {
        "key": "demo-champions",
        "name": "Demo: RFM champions and loyal customers",
        "rules": {"rfm": {"segment": ["champions", "loyal"]}},
        "description": "Bought recently and often (RFM).",
    },
    {
        "key": "demo-likely-buyers",
        "name": "Demo: top 20% purchase propensity",
        "kind": Segment.Kind.MODEL,
        "rules": {"score": {"model": "purchase", "op": "top_percent", "value": 20}},
        "description": "The fifth of customers most likely to order in the next 30 days.",
    },
]


def load(run: DemoRun) -> list[str]:
    lines = [_model_line(kind) for kind in (K.CHURN, K.PURCHASE, K.CLUSTERS, K.RECOMMENDATIONS)]
    rfm_refresh()
    for definition in DEMO_SEGMENTS:
        if not Segment.objects.filter(key=definition["key"]).exists():
            segment_create(**definition)
    lines.append(f"Segments: {run.url}/admin/segments/segment/")
    return lines


def _model_line(kind: str) -> str:
    active = ModelVersion.objects.filter(kind=kind, is_active=True).first()
    if active is None:
        try:
            active = model_train_any(kind=kind)
        except ModelTrainingError as error:
            return f"Model {kind}: not trained ({error})"
    if kind in PROPENSITY_KINDS:
        model_outputs_refresh(kind=kind)
    metrics = active.metrics
    if kind in PROPENSITY_KINDS:
        return f"Model {kind}: ROC AUC {metrics['roc_auc']} on holdout"
    if kind == K.CLUSTERS:
        return f"Model clusters: {metrics['k']} clusters over {metrics['rows']} customers"
    return f"Model recommendations: {metrics['customers_with_recommendations']} customers"
