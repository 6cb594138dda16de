"""The lean WSGI path for ingest POSTs answers exactly as the Django view does.

Requests are real WSGI calls into the application that config/wsgi.py serves (the same
object gunicorn or granian would call); what the path leaves to Django goes through
Django's own handler.
"""

import base64
import gzip

import orjson
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory, override_settings

from customers.ingest.fast_path import IngestFastPath
from customers.models import Customer, Event

pytestmark = pytest.mark.django_db


class Reply:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes):
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self):
        return orjson.loads(self.body)


def wsgi_post(path, body, auth=None, *, gzipped=False, app=None, method="post", **headers):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    if gzipped:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
    if auth:
        headers["Authorization"] = auth
    content_type = headers.pop("content_type", "application/json")
    factory = RequestFactory(**headers.pop("environ", {}))
    request = getattr(factory, method)(path, raw, content_type=content_type, headers=headers)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = status, response_headers

    application = app or IngestFastPath(WSGIHandler())
    # As Django's test client does: the test's transaction must outlive the "request".
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = application(request.environ, start_response)
        body = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Reply(started["status"], started["headers"], body)


def track(message_id="m1", user_id="u1", **fields):
    return {"userId": user_id, "event": "Product Viewed", "messageId": message_id, **fields}


def test_the_served_application_stores_a_track_and_answers_success(basic_auth):
    from config.wsgi import application

    reply = wsgi_post("/v1/track", track(properties={"sku": "A1"}), basic_auth, app=application)

    assert reply.status_code == 200
    assert reply.json() == {"success": True}
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    event = Event.objects.get()
    assert (event.type, event.name, event.properties) == ("track", "Product Viewed", {"sku": "A1"})
    assert Customer.objects.get().external_id == "u1"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", {"event": "no id"}),
        ("/v1/track", {"userId": "u1"}),
        ("/v1/batch", {"batch": [track("a"), {"type": "track", "userId": "u2"}]}),
        ("/v1/batch", {"batch": []}),
        ("/v1/identify", {"userId": "u1", "traits": {"email": "not an address"}}),
        ("/v1/t", b"{not json"),
        ("/v1/track", track(timestamp="yesterday")),
    ],
)
def test_a_refused_request_gets_the_same_400_as_from_django_and_stores_nothing(
    basic_auth, path, body
):
    reply = wsgi_post(path, body, basic_auth)
    from_django = Client().post(
        path,
        body if isinstance(body, bytes) else orjson.dumps(body),
        content_type="application/json",
        headers={"Authorization": basic_auth},
    )

    assert reply.status_code == from_django.status_code == 400
    assert reply.json() == from_django.json()
    assert reply.json()["errors"][0]["reason"]
    assert Event.objects.count() == 0
    assert Customer.objects.count() == 0


def test_a_batch_error_names_the_index_and_the_field(basic_auth):
    body = {"batch": [{**track("a"), "type": "track"}, {"type": "track", "userId": "u2"}]}

    reply = wsgi_post("/v1/batch", body, basic_auth)

    assert reply.status_code == 400
    assert reply.json()["errors"] == [
        {
            "index": 1,
            "field": "event",
            "reason": "is required for track and must be a non-empty string",
        }
    ]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Basic " + base64.b64encode(b"jl_nope_nope:").decode(),
        "Bearer jl_nope_nope",
        "Basic !!!",
    ],
)
def test_an_unknown_or_missing_key_is_a_401_and_stores_nothing(auth):
    reply = wsgi_post("/v1/track", track(), auth)

    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="journeyline"'
    assert reply.json()["code"] == "unauthorized"
    assert Event.objects.count() == 0


def test_gzip_bodies_bearer_keys_and_the_key_in_a_text_plain_body(write_key):
    gzipped = wsgi_post("/v1/track", track("g"), f"Bearer {write_key}", gzipped=True)
    beacon = wsgi_post(
        "/v1/b",
        {"batch": [{"type": "page", "anonymousId": "a1", "name": "Home"}], "writeKey": write_key},
        content_type="text/plain",
    )

    assert (gzipped.status_code, beacon.status_code) == (200, 200)
    assert sorted(Event.objects.values_list("type", flat=True)) == ["page", "track"]


def test_the_size_limits_hold(basic_auth):
    big = track(properties={"blob": "x" * (33 * 1024)})

    single = wsgi_post("/v1/track", big, basic_auth)
    in_batch = wsgi_post(
        "/v1/batch", {"batch": [track("ok"), {**big, "type": "track"}]}, basic_auth
    )

    assert (single.status_code, in_batch.status_code) == (400, 400)
    assert single.json()["errors"][0]["field"] == "body"
    assert in_batch.json()["errors"][0]["index"] == 1
    assert Event.objects.count() == 0


def test_a_repeated_message_id_is_accepted_and_stored_once(basic_auth):
    first = wsgi_post("/v1/track", track("same"), basic_auth)
    again = wsgi_post("/v1/track", track("same"), basic_auth)

    assert (first.status_code, again.status_code) == (200, 200)
    assert Event.objects.count() == 1


def test_what_the_path_does_not_handle_goes_to_django(basic_auth):
    preflight = wsgi_post("/v1/track", b"", method="options")
    wrong_method = wsgi_post("/v1/track", b"", method="put")
    unknown = wsgi_post("/v1/nowhere", track(), basic_auth)
    elsewhere = wsgi_post("/healthz", b"", method="get")

    assert preflight.status_code == 204
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404
    assert elsewhere.status_code in (200, 503)
    assert Event.objects.count() == 0


@override_settings(ALLOWED_HOSTS=["ingest.example.com"])
def test_a_host_outside_allowed_hosts_is_refused_by_django(basic_auth):
    reply = wsgi_post("/v1/track", track(), basic_auth, environ={"SERVER_NAME": "evil.example"})
    allowed = wsgi_post(
        "/v1/track", track("m2"), basic_auth, environ={"SERVER_NAME": "ingest.example.com"}
    )

    assert reply.status_code == 400
    assert allowed.status_code == 200
    assert list(Event.objects.values_list("message_id", flat=True)) == ["m2"]


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600)
def test_plain_http_is_redirected_when_https_is_required_and_https_gets_hsts(basic_auth):
    plain = wsgi_post("/v1/track", track(), basic_auth)
    proxied = wsgi_post("/v1/track", track("m2"), basic_auth, **{"X-Forwarded-Proto": "https"})

    assert plain.status_code == 301
    assert proxied.status_code == 200
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert list(Event.objects.values_list("message_id", flat=True)) == ["m2"]
