"""The OpenAPI schema is valid and warning-free; the docs page needs no CDN."""

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings


def test_schema_validates_with_no_warnings(tmp_path, capsys):
    """Every app's API is in this schema: a warning anywhere fails here, naming the view."""
    target = tmp_path / "schema.yaml"

    # --fail-on-warn turns any warning or error of the generator into an exception.
    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    except Exception as error:
        pytest.fail(f"{error}:\n{capsys.readouterr().err}")

    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    for path in (
        "/api/v1/customers/",
        "/api/v1/customers/{external_id}/",
        "/api/v1/customers/{external_id}/events/",
        "/api/v1/api-keys/",
        "/api/v1/api-keys/{id}/",
        "/api/v1/api-keys/{id}/revoke/",
    ):
        assert path in paths
    assert set(paths["/api/v1/customers/{external_id}/"]) >= {"get", "put", "patch"}
    # Ids with "/" and the like are addressable: the schema tells clients to encode them.
    for path in (
        "/api/v1/customers/{external_id}/",
        "/api/v1/customers/{external_id}/events/",
        "/api/v1/customers/{external_id}/consent/",
        "/api/v1/customers/{external_id}/export/",
    ):
        (parameter,) = [
            parameter
            for operation in paths[path].values()
            for parameter in operation["parameters"]
            if parameter["name"] == "external_id"
        ][:1]
        assert parameter["schema"] == {"type": "string"}
        assert "`a%2Fb`" in parameter["description"]
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert paths["/api/v1/customers/"]["get"]["security"] == [{"ApiKey": []}]


@pytest.mark.django_db
def test_schema_is_served_without_a_key(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Journeyline API"


@pytest.mark.django_db
def test_docs_page_loads_its_assets_from_our_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/") for a in assets)
    assert all(a.startswith("/") for a in assets), assets
    assert "cdn" not in html.lower()
    assert "//unpkg" not in html and "jsdelivr" not in html


@pytest.mark.django_db
@override_settings(WHITENOISE_USE_FINDERS=True)
def test_the_docs_assets_are_served_by_the_web_process_itself(client):
    # gunicorn serves no static files of its own: WhiteNoise in the middleware does.
    path = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"

    response = client.get(path)

    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
