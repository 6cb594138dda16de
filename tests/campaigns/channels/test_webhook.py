import hashlib
import hmac
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels import Delivery, PermanentSendError, TransientSendError
from campaigns.channels.webhook import WebhookBackend
from campaigns.rendering import RenderedMessage

SECRET = "whsec-test"


def hook(provider, path="/hooks/crm", **overrides):
    message = RenderedMessage(
        channel="webhook",
        locale="en",
        url=f"{provider.url}{path}",
        method="POST",
        headers={"X-Customer": "7"},
        body=json.dumps({"customer": 7, "event": "Signed Up"}),
    )
    for name, value in overrides.items():
        setattr(message, name, value)
    return Delivery(message=message, reference="msg-31")


def test_signed_post_with_the_rendered_headers_and_body(provider):
    provider.respond(202)
    backend = WebhookBackend(allow_private_addresses=True, secret=SECRET, timeout=5)
    assert backend.send(hook(provider)) == "msg-31"
    [request] = provider.requests
    assert (request.method, request.path) == ("POST", "/hooks/crm")
    assert request.headers["X-Customer"] == "7"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Journeyline-Delivery"] == "msg-31"
    assert json.loads(request.body) == {"customer": 7, "event": "Signed Up"}
    # the receiver can check the signature over timestamp and body
    parts = dict(
        item.split("=", 1) for item in request.headers["X-Journeyline-Signature"].split(",")
    )
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + request.body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())


def test_put_method(provider):
    WebhookBackend(allow_private_addresses=True, secret=SECRET).send(hook(provider, method="PUT"))
    assert provider.requests[0].method == "PUT"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientSendError),
        (429, TransientSendError),
        (404, PermanentSendError),
        (400, PermanentSendError),
    ],
)
def test_status_decides_retry(provider, status, error):
    provider.respond(status)
    with pytest.raises(error):
        WebhookBackend(allow_private_addresses=True, secret=SECRET).send(hook(provider))


def test_timeout_is_transient(provider):
    provider.respond(hang=True)
    with pytest.raises(TransientSendError, match="timed out"):
        WebhookBackend(allow_private_addresses=True, secret=SECRET, timeout=0.2).send(
            hook(provider)
        )
    provider.release()


def test_redirects_are_not_followed(provider):
    provider.respond(302, headers={"Location": "http://127.0.0.1:1/elsewhere"})
    with pytest.raises(PermanentSendError):
        WebhookBackend(allow_private_addresses=True, secret=SECRET).send(hook(provider))
    assert len(provider.requests) == 1


def test_not_a_url_is_permanent_and_sends_nothing(provider):
    with pytest.raises(PermanentSendError, match="not an http"):
        WebhookBackend(allow_private_addresses=True, secret=SECRET).send(
            hook(provider, url="file:///etc/passwd")
        )
    assert provider.requests == []


def test_a_template_cannot_forge_the_signature_header(provider):
    with pytest.raises(PermanentSendError):
        WebhookBackend(allow_private_addresses=True, secret=SECRET).send(
            hook(provider, headers={"X-Journeyline-Signature": "t=1,v1=0"})
        )
    assert provider.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/internal",
        "http://[::1]/",
    ],
)
def test_private_addresses_are_refused_unless_allowed(provider, url):
    delivery = hook(provider, url=url)
    with pytest.raises(PermanentSendError, match="not a public address"):
        WebhookBackend(secret=SECRET).send(delivery)
    assert provider.requests == []


def test_a_secret_is_required():
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_SIGNING_SECRET"):
        WebhookBackend()
