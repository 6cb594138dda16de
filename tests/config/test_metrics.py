import pytest
from django.test import override_settings

from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_metrics_count_events_waiting_for_hand_over(client, basic_auth):
    post(client, "/v1/track", {"userId": "u", "event": "E"}, basic_auth)  # on_commit never ran

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "# TYPE journeyline_events_not_handed_over gauge" in text
    assert sample(text, "journeyline_events_not_handed_over") == 1
    assert sample(text, "journeyline_queue_length") >= 0


@override_settings(METRICS_TOKEN="s3cret-token")
def test_metrics_can_require_a_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
