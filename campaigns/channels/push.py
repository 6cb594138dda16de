"""Push notifications: FCM HTTP v1 for Android and iOS apps, Web Push for browsers."""

import base64
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels.base import (
    ChannelBackend,
    Delivery,
    PermanentSendError,
    SendError,
    TransientSendError,
    http_status_error,
    retry_after_seconds,
)
from campaigns.rendering import RenderedMessage

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_PAYLOAD_LIMIT = 4096
APNS_PAYLOAD_LIMIT = 4096
WEB_PUSH_PAYLOAD_LIMIT = 4078  # 4096 less the aes128gcm header and padding


# Payloads (pure: the admin measures them) ------------------------------------------


def fcm_message(message: RenderedMessage, token: str) -> dict[str, Any]:
    notification = {"title": message.title, "body": message.body}
    if message.image_url:
        notification["image"] = message.image_url
    data = {str(key): str(value) for key, value in message.data.items()}
    if message.deep_link:
        data["deep_link"] = message.deep_link
    body: dict[str, Any] = {"token": token, "notification": notification}
    if data:
        body["data"] = data
    if message.deep_link:
        body["android"] = {"notification": {"click_action": message.deep_link}}
    if message.image_url:
        body["apns"] = {
            "payload": {"aps": {"mutable-content": 1}},
            "fcm_options": {"image": message.image_url},
        }
    return {"message": body}


def apns_payload(message: RenderedMessage) -> dict[str, Any]:
    """What reaches an iPhone, which APNs limits to 4096 bytes."""
    aps: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}}
    if message.image_url:
        aps["mutable-content"] = 1
    payload: dict[str, Any] = {"aps": aps, **{str(k): str(v) for k, v in message.data.items()}}
    if message.deep_link:
        payload["deep_link"] = message.deep_link
    if message.image_url:
        payload["image"] = message.image_url
    return payload


def web_push_payload(message: RenderedMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"title": message.title, "body": message.body}
    if message.image_url:
        payload["image"] = message.image_url
    if message.deep_link:
        payload["url"] = message.deep_link
    if message.data:
        payload["data"] = dict(message.data)
    return payload


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


def push_payload_sizes(message: RenderedMessage) -> dict[str, tuple[int, int]]:
    """Bytes and limit per provider. FCM counts the message without the device token."""
    fcm = fcm_message(message, "")["message"]
    fcm.pop("token")
    return {
        "FCM": (_size(fcm), FCM_PAYLOAD_LIMIT),
        "APNs": (_size(apns_payload(message)), APNS_PAYLOAD_LIMIT),
        "Web Push": (_size(web_push_payload(message)), WEB_PUSH_PAYLOAD_LIMIT),
    }


def _check_size(payload: dict[str, Any], limit: int, provider: str) -> None:
    size = _size(payload)
    if size > limit:
        raise PermanentSendError(f"{provider} payload is {size} bytes, over the {limit} limit")


# FCM HTTP v1 ---------------------------------------------------------------------


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def service_account_jwt(info: dict[str, Any], *, now: int, scope: str = FCM_SCOPE) -> str:
    """The signed assertion traded for an OAuth access token (RFC 7523, RS256)."""
    private_key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured("the FCM service account key must be an RSA key")
    header = {"alg": "RS256", "typ": "JWT"}
    if info.get("private_key_id"):
        header["kid"] = info["private_key_id"]
    claims = {
        "iss": info["client_email"],
        "scope": scope,
        "aud": info["token_uri"],
        "iat": now,
        "exp": now + 3600,
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + b"."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + _b64url(signature)).decode()


class FcmBackend(ChannelBackend):
    """Options: ``service_account_file`` or ``service_account_info`` (the JSON key of a
    service account), ``project_id`` (default: the key's), ``access_token`` (a static
    token instead of a key, for tests), ``base_url``, ``timeout``."""

    def __init__(
        self,
        service_account_file: str = "",
        service_account_info: dict[str, Any] | str | None = None,
        project_id: str = "",
        access_token: str = "",
        base_url: str = "https://fcm.googleapis.com",
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        info: dict[str, Any] | None = None
        if service_account_file:
            info = json.loads(Path(service_account_file).read_text())
        elif isinstance(service_account_info, str) and service_account_info:
            info = json.loads(service_account_info)
        elif isinstance(service_account_info, dict):
            info = service_account_info
        if info is None and not access_token:
            raise ImproperlyConfigured(
                "FCM_SERVICE_ACCOUNT_FILE must be set to send push notifications through FCM"
            )
        self.service_account = info
        self.project_id = project_id or (info or {}).get("project_id", "")
        if not self.project_id:
            raise ImproperlyConfigured("FCM_PROJECT_ID must be set (or be in the service account)")
        self._static_token = access_token
        self._token = access_token
        self._token_expires = float("inf") if access_token else 0.0
        self._token_lock = threading.Lock()
        self.client = httpx.Client(base_url=base_url, timeout=timeout)

    def access_token(self, *, refresh: bool = False) -> str:
        with self._token_lock:
            if self._static_token:
                return self._static_token
            if refresh or time.time() >= self._token_expires - 60:
                self._token, lifetime = self._fetch_token()
                self._token_expires = time.time() + lifetime
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        info = self.service_account or {}
        assertion = service_account_jwt(info, now=int(time.time()))
        try:
            response = self.client.post(
                info["token_uri"],
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
            )
        except httpx.TransportError as error:
            raise TransientSendError(f"OAuth token endpoint unreachable: {error}") from None
        if response.status_code != 200:
            raise http_status_error(
                provider="OAuth token endpoint",
                status=response.status_code,
                detail=response.text[:200],
                retry_after=response.headers.get("Retry-After"),
            )
        payload = response.json()
        return payload["access_token"], float(payload.get("expires_in", 3600))

    def send(self, delivery: Delivery) -> str:
        if not delivery.to:
            raise PermanentSendError("no device token")
        body = fcm_message(delivery.message, delivery.to)
        _check_size(fcm_message(delivery.message, "")["message"], FCM_PAYLOAD_LIMIT, "FCM")
        response = self._post(body, refresh=False)
        if response.status_code == 401:
            # The token may have been revoked or expired early: fetch a new one, once.
            response = self._post(body, refresh=True)
        if response.status_code == 200:
            return str(response.json().get("name", ""))
        raise _fcm_error(response)

    def _post(self, body: dict[str, Any], *, refresh: bool) -> httpx.Response:
        token = self.access_token(refresh=refresh)
        try:
            return self.client.post(
                f"/v1/projects/{self.project_id}/messages:send",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TimeoutException:
            raise TransientSendError("FCM timed out") from None
        except httpx.TransportError as error:
            raise TransientSendError(f"FCM unreachable: {type(error).__name__}") from None


def _fcm_error(response: httpx.Response) -> SendError:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    codes = [
        detail.get("errorCode")
        for detail in error.get("details", [])
        if isinstance(detail, dict) and detail.get("errorCode")
    ]
    code = codes[0] if codes else error.get("status", "")
    detail = f"{code} {error.get('message', '')}".strip()
    if code == "UNREGISTERED":
        return PermanentSendError(f"FCM: the device token is no longer registered ({detail})")
    if code in ("QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"):
        return TransientSendError(
            f"FCM answered {response.status_code}: {detail}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    return http_status_error(
        provider="FCM",
        status=response.status_code,
        detail=detail,
        retry_after=response.headers.get("Retry-After"),
    )


# Web Push ------------------------------------------------------------------------


class WebPushBackend(ChannelBackend):
    """Options: ``vapid_private_key`` (PEM, base64url DER or raw key, or a file path),
    ``vapid_subject`` (``mailto:`` or ``https:`` contact), ``ttl`` seconds, ``timeout``.
    ``Delivery.to`` is the browser's subscription as JSON."""

    def __init__(
        self,
        vapid_private_key: str = "",
        vapid_subject: str = "",
        ttl: int = 86400,
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not vapid_private_key or not vapid_subject:
            raise ImproperlyConfigured(
                "WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_SUBJECT must be set for Web Push"
            )
        from py_vapid import Vapid

        key_path = Path(vapid_private_key)
        if "\n" not in vapid_private_key and key_path.is_file():
            self.vapid = Vapid.from_file(str(key_path))
        elif "BEGIN" in vapid_private_key:
            self.vapid = Vapid.from_pem(vapid_private_key.encode())
        else:
            self.vapid = Vapid.from_string(vapid_private_key)
        self.subject = vapid_subject
        self.ttl = ttl
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, delivery: Delivery) -> str:
        from pywebpush import WebPushException, webpush

        try:
            subscription = json.loads(delivery.to)
            endpoint = subscription["endpoint"]
            keys = subscription["keys"]
            if not keys["p256dh"] or not keys["auth"]:
                raise ValueError("empty key")
        except (ValueError, KeyError, TypeError):
            raise PermanentSendError("not a Web Push subscription") from None
        payload = web_push_payload(delivery.message)
        _check_size(payload, WEB_PUSH_PAYLOAD_LIMIT, "Web Push")
        try:
            response = webpush(
                subscription_info=subscription,
                data=json.dumps(payload, ensure_ascii=False),
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                ttl=self.ttl,
                timeout=self.timeout,
                requests_session=self.session,
            )
        except WebPushException as error:
            response = error.response
            if response is None:
                raise TransientSendError(f"Web Push failed: {error.message}") from None
            status = response.status_code
            if status in (404, 410):
                raise PermanentSendError(
                    f"Web Push: the subscription has expired ({status})"
                ) from None
            raise http_status_error(
                provider="Web Push service",
                status=status,
                detail=response.text[:200],
                retry_after=response.headers.get("Retry-After"),
            ) from None
        except requests.Timeout:
            raise TransientSendError("Web Push service timed out") from None
        except requests.RequestException as error:
            raise TransientSendError(
                f"Web Push service unreachable: {type(error).__name__}"
            ) from None
        location = response.headers.get("Location") if hasattr(response, "headers") else None
        return location or f"{endpoint.rsplit('/', 1)[-1][:32]}:{uuid.uuid4().hex}"


# Routing by platform -------------------------------------------------------------


class PushBackend(ChannelBackend):
    """FCM for app devices (ios, android) and Web Push for browsers (web), one channel.

    Options: ``fcm`` and ``webpush``, each the options of that backend (or empty).
    """

    def __init__(
        self,
        fcm: dict[str, Any] | None = None,
        webpush: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.fcm = FcmBackend(**fcm) if fcm else None
        self.webpush = WebPushBackend(**webpush) if webpush else None

    def send(self, delivery: Delivery) -> str:
        backend = self.webpush if delivery.platform == "web" else self.fcm
        if backend is None:
            kind = "Web Push" if delivery.platform == "web" else "FCM"
            raise PermanentSendError(f"{kind} is not configured")
        return backend.send(delivery)
