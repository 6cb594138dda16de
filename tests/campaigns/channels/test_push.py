import base64
import json
import urllib.parse

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels import Delivery, PermanentSendError, TransientSendError
from campaigns.channels.push import (
    FCM_SCOPE,
    FcmBackend,
    PushBackend,
    WebPushBackend,
    push_payload_sizes,
)
from campaigns.rendering import RenderedMessage


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def notification(**overrides):
    message = RenderedMessage(
        channel="push",
        locale="en",
        title="Your cart misses you",
        body="2 items waiting 🛒",
        image_url="https://img.test/cart.png",
        deep_link="shop://cart",
        data={"cart_id": "77"},
    )
    for name, value in overrides.items():
        setattr(message, name, value)
    return message


# FCM ------------------------------------------------------------------------------


@pytest.fixture
def service_account(provider):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "shop-app",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "sender@shop-app.iam.gserviceaccount.com",
        "token_uri": f"{provider.url}/token",
    }
    return info, key.public_key()


def test_fcm_trades_a_signed_jwt_for_a_token_and_sends(provider, service_account):
    info, public_key = service_account
    provider.respond(
        200, json_body={"access_token": "ya29.token", "expires_in": 3599}, path="/token"
    )
    provider.respond(
        200,
        json_body={"name": "projects/shop-app/messages/0:1"},
        path="/v1/projects/shop-app/messages:send",
    )
    backend = FcmBackend(service_account_info=info, base_url=provider.url)
    # when
    message_id = backend.send(
        Delivery(message=notification(), to="device-token-1", platform="android")
    )
    # then a token request with a valid RS256 assertion came first
    assert message_id == "projects/shop-app/messages/0:1"
    token_request, send_request = provider.requests
    form = urllib.parse.parse_qs(token_request.body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, claims, signature = form["assertion"][0].split(".")
    public_key.verify(
        b64url_decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    claims = json.loads(b64url_decode(claims))
    assert json.loads(b64url_decode(header)) == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    assert claims["iss"] == info["client_email"]
    assert claims["scope"] == FCM_SCOPE
    assert claims["aud"] == info["token_uri"]
    assert claims["exp"] - claims["iat"] == 3600
    # and the message went to the v1 API with the bearer token
    assert send_request.headers["Authorization"] == "Bearer ya29.token"
    assert send_request.json() == {
        "message": {
            "token": "device-token-1",
            "notification": {
                "title": "Your cart misses you",
                "body": "2 items waiting 🛒",
                "image": "https://img.test/cart.png",
            },
            "data": {"cart_id": "77", "deep_link": "shop://cart"},
            "android": {"notification": {"click_action": "shop://cart"}},
            "apns": {
                "payload": {"aps": {"mutable-content": 1}},
                "fcm_options": {"image": "https://img.test/cart.png"},
            },
        }
    }


def test_fcm_reuses_its_token_until_it_expires(provider, service_account):
    info, _ = service_account
    provider.respond(200, json_body={"access_token": "t1", "expires_in": 3600}, path="/token")
    provider.default.body = b'{"name": "projects/shop-app/messages/1"}'
    backend = FcmBackend(service_account_info=info, base_url=provider.url)
    for _ in range(3):
        backend.send(Delivery(message=notification(), to="tok"))
    assert [r.path for r in provider.requests].count("/token") == 1
    assert len(provider.requests) == 4


def test_fcm_refreshes_a_rejected_token_once(provider, service_account):
    info, _ = service_account
    provider.respond(200, json_body={"access_token": "old", "expires_in": 3600}, path="/token")
    provider.respond(200, json_body={"access_token": "new", "expires_in": 3600}, path="/token")
    send_path = "/v1/projects/shop-app/messages:send"
    provider.respond(
        401, json_body={"error": {"code": 401, "status": "UNAUTHENTICATED"}}, path=send_path
    )
    provider.respond(200, json_body={"name": "projects/shop-app/messages/2"}, path=send_path)
    backend = FcmBackend(service_account_info=info, base_url=provider.url)
    assert (
        backend.send(Delivery(message=notification(), to="tok")) == "projects/shop-app/messages/2"
    )
    sends = [r for r in provider.requests if r.path == send_path]
    assert [r.headers["Authorization"] for r in sends] == ["Bearer old", "Bearer new"]


def fcm_error(status, error_code):
    return {
        "error": {
            "code": status,
            "message": "boom",
            "status": "X",
            "details": [
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": error_code,
                }
            ],
        }
    }


def test_fcm_unregistered_token_is_permanent(provider):
    provider.respond(404, json_body=fcm_error(404, "UNREGISTERED"))
    backend = FcmBackend(access_token="static", project_id="shop-app", base_url=provider.url)
    with pytest.raises(PermanentSendError, match="no longer registered"):
        backend.send(Delivery(message=notification(), to="stale"))
    assert provider.requests[0].headers["Authorization"] == "Bearer static"


def test_fcm_quota_is_transient_with_retry_after(provider):
    provider.respond(429, json_body=fcm_error(429, "QUOTA_EXCEEDED"), headers={"Retry-After": "30"})
    backend = FcmBackend(access_token="static", project_id="shop-app", base_url=provider.url)
    with pytest.raises(TransientSendError) as error:
        backend.send(Delivery(message=notification(), to="tok"))
    assert error.value.retry_after == 30.0


def test_fcm_unavailable_is_transient(provider):
    provider.respond(503, json_body=fcm_error(503, "UNAVAILABLE"))
    backend = FcmBackend(access_token="static", project_id="shop-app", base_url=provider.url)
    with pytest.raises(TransientSendError):
        backend.send(Delivery(message=notification(), to="tok"))


def test_fcm_invalid_argument_is_permanent(provider):
    provider.respond(400, json_body=fcm_error(400, "INVALID_ARGUMENT"))
    backend = FcmBackend(access_token="static", project_id="shop-app", base_url=provider.url)
    with pytest.raises(PermanentSendError, match="INVALID_ARGUMENT"):
        backend.send(Delivery(message=notification(), to="tok"))


def test_fcm_oversized_payload_is_refused_before_sending(provider):
    backend = FcmBackend(access_token="static", project_id="shop-app", base_url=provider.url)
    with pytest.raises(PermanentSendError, match="over the 4096 limit"):
        backend.send(Delivery(message=notification(data={"blob": "x" * 5000}), to="tok"))
    assert provider.requests == []


def test_fcm_needs_credentials():
    with pytest.raises(ImproperlyConfigured, match="FCM_SERVICE_ACCOUNT_FILE"):
        FcmBackend(project_id="x")


def test_payload_sizes_against_provider_limits():
    sizes = push_payload_sizes(notification())
    assert sizes["FCM"][1] == 4096
    assert sizes["APNs"][1] == 4096
    assert 0 < sizes["FCM"][0] < 400
    # emoji count in bytes, not characters
    assert (
        push_payload_sizes(notification(body="🛒"))["APNs"][0]
        == push_payload_sizes(notification(body="abcd"))["APNs"][0]
    )


# Web Push -------------------------------------------------------------------------


@pytest.fixture
def browser(provider):
    """A browser's subscription: its key pair and auth secret, and the push endpoint."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = b"0123456789abcdef"
    subscription = {
        "endpoint": f"{provider.url}/push/subscription-1",
        "keys": {
            "p256dh": base64.urlsafe_b64encode(public).decode().rstrip("="),
            "auth": base64.urlsafe_b64encode(auth).decode().rstrip("="),
        },
    }
    return subscription, private_key, auth


@pytest.fixture
def vapid_key():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


def test_web_push_sends_an_encrypted_payload_with_vapid(provider, browser, vapid_key):
    subscription, browser_key, auth = browser
    pem, vapid_public = vapid_key
    provider.respond(201, headers={"Location": f"{provider.url}/messages/m1"})
    backend = WebPushBackend(vapid_private_key=pem, vapid_subject="mailto:ops@shop.test", ttl=600)
    # when
    message_id = backend.send(
        Delivery(message=notification(), to=json.dumps(subscription), platform="web")
    )
    # then
    assert message_id == f"{provider.url}/messages/m1"
    [request] = provider.requests
    assert request.path == "/push/subscription-1"
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert request.headers["TTL"] == "600"
    # the browser can decrypt it
    plain = http_ece.decrypt(
        request.body, private_key=browser_key, auth_secret=auth, version="aes128gcm"
    )
    assert json.loads(plain) == {
        "title": "Your cart misses you",
        "body": "2 items waiting 🛒",
        "image": "https://img.test/cart.png",
        "url": "shop://cart",
        "data": {"cart_id": "77"},
    }
    # and the VAPID JWT is signed by our key for this push service
    scheme, _, params = request.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    token = dict(part.strip().split("=", 1) for part in params.split(","))["t"]
    header, claims, signature = token.split(".")
    raw = b64url_decode(signature)
    der = utils.encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    vapid_public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(b64url_decode(claims))
    assert claims["aud"] == provider.url
    assert claims["sub"] == "mailto:ops@shop.test"


def test_web_push_expired_subscription_is_permanent(provider, browser, vapid_key):
    provider.respond(410, body=b"gone")
    backend = WebPushBackend(vapid_private_key=vapid_key[0], vapid_subject="mailto:ops@shop.test")
    with pytest.raises(PermanentSendError, match="expired"):
        backend.send(Delivery(message=notification(), to=json.dumps(browser[0]), platform="web"))


def test_web_push_rate_limit_is_transient(provider, browser, vapid_key):
    provider.respond(429, headers={"Retry-After": "12"})
    backend = WebPushBackend(vapid_private_key=vapid_key[0], vapid_subject="mailto:ops@shop.test")
    with pytest.raises(TransientSendError) as error:
        backend.send(Delivery(message=notification(), to=json.dumps(browser[0]), platform="web"))
    assert error.value.retry_after == 12.0


def test_web_push_refuses_what_is_not_a_subscription(vapid_key):
    backend = WebPushBackend(vapid_private_key=vapid_key[0], vapid_subject="mailto:ops@shop.test")
    with pytest.raises(PermanentSendError, match="not a Web Push subscription"):
        backend.send(Delivery(message=notification(), to="device-token", platform="web"))


def test_push_backend_routes_by_platform(provider, browser, vapid_key):
    provider.respond(
        200, json_body={"name": "projects/p/messages/9"}, path="/v1/projects/p/messages:send"
    )
    provider.respond(201, path="/push/subscription-1")
    backend = PushBackend(
        fcm={"access_token": "static", "project_id": "p", "base_url": provider.url},
        webpush={"vapid_private_key": vapid_key[0], "vapid_subject": "mailto:ops@shop.test"},
    )
    backend.send(Delivery(message=notification(), to="android-token", platform="android"))
    backend.send(Delivery(message=notification(), to=json.dumps(browser[0]), platform="web"))
    assert [r.path for r in provider.requests] == [
        "/v1/projects/p/messages:send",
        "/push/subscription-1",
    ]


def test_push_backend_without_web_push_says_so(provider):
    backend = PushBackend(fcm={"access_token": "s", "project_id": "p", "base_url": provider.url})
    with pytest.raises(PermanentSendError, match="Web Push is not configured"):
        backend.send(Delivery(message=notification(), to="{}", platform="web"))
    assert provider.requests == []
