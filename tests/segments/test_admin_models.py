"""Model-based segments in the admin (typed fields, no rule), and the clusters chart."""

import pytest

from segments.models import ModelVersion, Segment
from tests.consent.factories import TopicFactory
from tests.segments.factories import NOW

pytestmark = pytest.mark.django_db

ADD = "/admin/segments/segment/add/"
CLUSTERS = [
    {"cluster": 0, "size": 30, "description": "high orders_365d (+1.8 sd)", "distinctive": {}},
    {"cluster": 1, "size": 10, "description": "high recency_days (+2.0 sd)", "distinctive": {}},
]


def clustering(*, active: bool = True) -> ModelVersion:
    return ModelVersion.objects.create(
        kind="clusters", version=1, trained_at=NOW, artefact=b"", is_active=active,
        metrics={"k": 2, "silhouette": 0.6, "rows": 40, "clusters": CLUSTERS},
    )  # fmt: skip


def form(**fields) -> dict:
    data = {
        "key": "churners",
        "name": "Likely churners",
        "description": "",
        "kind": "model",
        "rules": "",
        "static_entries": "",
        "model_kind": "churn",
        "model_op": "top_percent",
        "model_value": "10",
    }
    data.update(fields)
    return data


def test_the_add_page_offers_the_active_clusters_by_description(admin_client):
    clustering()

    response = admin_client.get(ADD)

    assert response.status_code == 200
    assert response.context["adminform"].form.fields["model_clusters"].choices == [
        (0, "0: high orders_365d (+1.8 sd) (30 customers)"),
        (1, "1: high recency_days (+2.0 sd) (10 customers)"),
    ]


def test_a_score_segment_is_made_from_typed_fields(admin_client):
    response = admin_client.post(ADD, form())

    assert response.status_code == 302
    segment = Segment.objects.get()
    assert (segment.kind, segment.rules) == (
        "model",
        {"score": {"model": "churn", "op": "top_percent", "value": 10.0}},
    )


def test_a_cluster_segment_is_made_from_the_chosen_clusters(admin_client):
    clustering()

    response = admin_client.post(
        ADD, form(model_kind="clusters", model_op="", model_value="", model_clusters=["1"])
    )

    assert response.status_code == 302
    assert Segment.objects.get().rules == {"cluster": {"in": [1]}}


def test_the_change_page_shows_the_segments_choice_in_the_typed_fields(admin_client):
    admin_client.post(ADD, form(model_kind="purchase", model_op="above", model_value="0.7"))
    segment = Segment.objects.get()

    response = admin_client.get(f"/admin/segments/segment/{segment.pk}/change/")

    initial = response.context["adminform"].form.initial
    assert (initial["model_kind"], initial["model_op"], initial["model_value"]) == (
        "purchase",
        "above",
        0.7,
    )


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"model_kind": ""},
            {"model_kind": ["Choose the model whose output selects the members."]},
        ),
        (
            {"model_value": "1.5", "model_op": "above"},
            {"model_value": ["must be a number from 0 to 1"]},
        ),
        ({"model_value": "0"}, {"model_value": ["must be a percentage above 0, up to 100"]}),
        ({"model_value": "lots"}, {"model_value": ["Enter a number."]}),
        (
            {"model_op": "", "model_value": ""},
            {
                "model_op": ["Choose above, below or top percent."],
                "model_value": ["Give a threshold (0 to 1) or a percentage."],
            },
        ),
        (
            {"model_kind": "clusters", "model_clusters": []},
            {"model_clusters": ["There is no active clustering: train one first."]},
        ),
        (
            {"model_kind": "recommendations"},
            {
                "model_kind": [
                    "Select a valid choice. recommendations is not one of the available choices."
                ]
            },
        ),
    ],
)
def test_bad_model_fields_are_form_errors_and_nothing_is_saved(admin_client, fields, errors):
    response = admin_client.post(ADD, form(**fields))

    assert response.status_code == 200
    form_errors = response.context["adminform"].form.errors
    assert {field: form_errors[field] for field in errors} == errors
    assert Segment.objects.count() == 0


def test_an_unknown_cluster_is_a_form_error(admin_client):
    clustering()

    response = admin_client.post(
        ADD, form(model_kind="clusters", model_op="", model_value="", model_clusters=["7"])
    )

    assert response.status_code == 200
    assert "model_clusters" in response.context["adminform"].form.errors
    assert Segment.objects.count() == 0


def test_the_clusters_version_page_charts_size_and_description(admin_client):
    model = clustering()

    response = admin_client.get(f"/admin/segments/modelversion/{model.pk}/change/")

    assert response.status_code == 200
    bars = response.context["cluster_chart"]["bars"]
    assert [(bar["cluster"], bar["size"], bar["share"], bar["width"]) for bar in bars] == [
        (0, 30, 75.0, 360.0),
        (1, 10, 25.0, 120.0),
    ]
    page = response.content.decode()
    assert "high recency_days (+2.0 sd)" in page
    assert 'aria-label="Customers per cluster"' in page
    assert "<script src=" not in page.split('aria-label="Customers per cluster"')[1][:2000]


def test_the_rule_builder_offers_consent_topics_and_rfm_segments(admin_client):
    TopicFactory(key="newsletter", channels=["email"])

    options = admin_client.get(ADD).context["builder_options"]

    assert "newsletter" in options["consentTopics"]
    assert options["consentStates"] == [
        "allowed",
        "no_consent",
        "withdrawn",
        "pending_confirmation",
    ]
    assert options["rfmSegments"][0] == "champions"
    assert options["rfmScores"] == ["recency", "frequency", "monetary"]


def test_changing_the_threshold_bumps_the_version(admin_client):
    admin_client.post(ADD, form(model_kind="churn", model_op="above", model_value="0.5"))
    segment = Segment.objects.get()

    response = admin_client.post(
        f"/admin/segments/segment/{segment.pk}/change/",
        {"name": "Likely churners", "description": "", "model_kind": "churn",
         "model_op": "above", "model_value": "0.8", "rules": ""},
    )  # fmt: skip

    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.version, segment.kind, segment.rules) == (
        2,
        "model",
        {"score": {"model": "churn", "op": "above", "value": 0.8}},
    )
