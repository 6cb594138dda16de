import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": True, "redis": True}}


@pytest.mark.django_db
def test_healthz_is_503_when_redis_is_unreachable(client, tmp_path):
    with override_settings(REDIS_URL=f"unix://{tmp_path}/nothing.sock"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "redis": False}
