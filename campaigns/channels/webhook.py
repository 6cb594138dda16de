"""Webhooks: signed HTTP requests to an address in the template.

The receiver checks ``X-Journeyline-Signature: t=<unix time>,v1=<hex>`` where the hex is
HMAC-SHA256 of ``"<unix time>.<body>"`` with the shared secret, and refuses old times to
stop replays.
"""

import hashlib
import hmac
import ipaddress
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels.base import (
    ChannelBackend,
    Delivery,
    PermanentSendError,
    TransientSendError,
    http_status_error,
)

SIGNATURE_HEADER = "X-Journeyline-Signature"
DELIVERY_HEADER = "X-Journeyline-Delivery"
_RESERVED = {SIGNATURE_HEADER.lower(), DELIVERY_HEADER.lower(), "content-length", "host"}


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class WebhookBackend(ChannelBackend):
    """Options: ``secret`` (the signing key), ``timeout`` seconds, ``user_agent``,
    ``allow_private_addresses`` (off in production: a template's URL must not reach the
    machines behind the firewall, nor the cloud's metadata service)."""

    def __init__(
        self,
        secret: str = "",
        timeout: float = 10.0,
        user_agent: str = "Journeyline-Webhook/1.0",
        allow_private_addresses: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.allow_private_addresses = allow_private_addresses
        if not secret:
            raise ImproperlyConfigured("WEBHOOK_SIGNING_SECRET must be set to send webhooks")
        self.secret = secret
        self.client = httpx.Client(
            timeout=timeout, follow_redirects=False, headers={"User-Agent": user_agent}
        )

    def send(self, delivery: Delivery) -> str:
        message = delivery.message
        url = message.url.strip()
        if not url.startswith(("https://", "http://")):
            raise PermanentSendError(f"webhook address is not an http(s) URL: {url[:100]!r}")
        if not self.allow_private_addresses:
            _refuse_private(url)
        body = message.body.encode()
        delivery_id = delivery.reference or uuid.uuid4().hex
        headers = {"Content-Type": "application/json"}
        for name, value in message.headers.items():
            if name.lower() in _RESERVED or "\n" in value or "\r" in value:
                raise PermanentSendError(f"the header {name!r} cannot be set")
            headers[name] = value
        headers[DELIVERY_HEADER] = delivery_id
        headers[SIGNATURE_HEADER] = webhook_signature(
            secret=self.secret, timestamp=int(time.time()), body=body
        )
        try:
            response = self.client.request(
                message.method or "POST", url, content=body, headers=headers
            )
        except httpx.TimeoutException:
            raise TransientSendError("webhook timed out") from None
        except httpx.TransportError as error:
            raise TransientSendError(f"webhook unreachable: {type(error).__name__}") from None
        if 200 <= response.status_code < 300:
            return delivery_id
        raise http_status_error(
            provider="webhook",
            status=response.status_code,
            detail=response.reason_phrase,
            retry_after=response.headers.get("Retry-After"),
        )


def _refuse_private(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, a non-public address.

    The check runs before the request and the client resolves again, so a DNS answer that
    changes in between is not caught; outbound filtering at the network edge closes that.
    """
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise TransientSendError(f"webhook host {host!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise PermanentSendError(f"webhook host {host!r} is not a public address")
