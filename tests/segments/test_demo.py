"""The segments demo step: models trained on the store's history, customers scored, and
the starting segments, created once however often ``make demo`` runs."""

import pytest
from django.utils import timezone

from customers.demo.credentials import DemoCredentials
from customers.demo.steps import DemoRun, demo_steps
from segments.demo import DEMO_SEGMENTS, load
from segments.models import CustomerCluster, CustomerScore, ModelVersion, Segment
from tests.segments.ml.population import generate


def _run() -> DemoRun:
    credentials = DemoCredentials(
        username="admin",
        password=None,
        write_key="jl_demo",
        api_key_id=1,
        user_created=False,
        key_created=False,
    )
    return DemoRun(url="http://testserver", store=None, credentials=credentials)


def test_the_app_registers_the_step_before_campaigns_and_journeys():
    # registered in ready(), in INSTALLED_APPS order: the win-back journey reads the scores
    names = [name for name, _ in demo_steps.items()]

    assert dict(demo_steps.items())["segments"] is load
    assert names.index("segments") < names.index("journeys")


@pytest.mark.django_db
def test_the_demo_trains_scores_and_segments_once():
    # given a store's history with real structure
    customers = generate(now=timezone.now())
    # when the demo step runs twice
    first = load(_run())
    versions = ModelVersion.objects.count()
    second = load(_run())
    # then churn, purchase and clusters are trained once, and everyone is scored
    active = set(ModelVersion.objects.filter(is_active=True).values_list("kind", flat=True))
    assert {"churn", "purchase", "clusters"} <= active
    assert ModelVersion.objects.count() == versions
    for kind in ("churn", "purchase"):
        assert CustomerScore.objects.filter(kind=kind).count() == len(customers)
    assert CustomerCluster.objects.count() == len(customers)
    # and the box says how the models did
    assert any(line.startswith("Model churn: ROC AUC") for line in first)
    assert first == second
    # and the segments exist once, the likely buyers as a model-based segment
    keys = [definition["key"] for definition in DEMO_SEGMENTS]
    assert Segment.objects.filter(key__in=keys).count() == len(keys)
    assert Segment.objects.get(key="demo-likely-buyers").kind == Segment.Kind.MODEL
