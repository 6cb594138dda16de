"""Signed, expiring tokens for customers' own pages. One salt per purpose, so a token
made for one page is refused by every other."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes

PREFERENCES = "consent.preferences"
UNSUBSCRIBE = "consent.unsubscribe"
CONFIRM = "consent.confirm"

_MAX_AGE_DAYS = {
    PREFERENCES: "CONSENT_PREFERENCES_LINK_DAYS",
    UNSUBSCRIBE: "CONSENT_UNSUBSCRIBE_LINK_DAYS",
    CONFIRM: "CONSENT_CONFIRMATION_LINK_DAYS",
}
_VIEW_NAMES = {
    PREFERENCES: "consent:preferences",
    UNSUBSCRIBE: "consent:unsubscribe",
    CONFIRM: "consent:confirm",
}


class BadToken(Exception):
    """Tampered, expired or made for another page."""


@dataclass(frozen=True)
class TokenClaims:
    customer_id: int
    channel: str | None = None
    topic_key: str | None = None
    locale: str = ""  # filled in from the profile, never carried in the token


def token_make(
    *, purpose: str, customer_id: int, channel: str | None = None, topic_key: str | None = None
) -> str:
    """What ``signing.dumps(payload, salt=purpose)`` gives (``token_read`` reads it with
    ``signing.loads``), made without deriving the HMAC key again for every token: a
    broadcast makes two per email."""
    mac = _signer_mac(purpose, settings.SECRET_KEY)
    return _token(mac, customer_id=customer_id, channel=channel, topic_key=topic_key)


def _token(mac, *, customer_id: int, channel: str | None, topic_key: str | None) -> str:
    payload = f'{{"c":{int(customer_id)}{_claims_rest(channel, topic_key)}'
    data = signing.b64_encode(payload.encode("latin-1"))
    value = f"{data.decode()}:{signing.b62_encode(int(time.time()))}"
    mac = mac.copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


@functools.lru_cache(maxsize=256)
def _claims_rest(channel: str | None, topic_key: str | None) -> str:
    """The payload's JSON after the customer id, as ``json.dumps`` writes it (ASCII, no
    spaces): the same for every customer of a send, so written once."""
    rest = {}
    if channel:
        rest["ch"] = channel
    if topic_key:
        rest["t"] = topic_key
    return "," + json.dumps(rest, separators=(",", ":"))[1:] if rest else "}"


@functools.lru_cache(maxsize=16)
def _signer_mac(purpose: str, secret: str):
    """The keyed HMAC of ``signing.Signer(salt=purpose).signature`` (``salted_hmac`` with
    the key salt ``purpose + "signer"`` and SHA-256), copied for each token."""
    key = hashlib.sha256(force_bytes(purpose + "signer") + force_bytes(secret)).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def token_read(*, purpose: str, token: str) -> TokenClaims:
    max_age = getattr(settings, _MAX_AGE_DAYS[purpose]) * 86400
    try:
        payload = signing.loads(token, salt=purpose, max_age=max_age)
    except signing.BadSignature as error:  # SignatureExpired is a BadSignature too
        raise BadToken(str(error)) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), int):
        raise BadToken("malformed token")
    return TokenClaims(
        customer_id=payload["c"], channel=payload.get("ch"), topic_key=payload.get("t")
    )


def link_make(
    *, purpose: str, customer_id: int, channel: str | None = None, topic_key: str | None = None
) -> str:
    """An absolute link to a customer's page, on ``JOURNEYLINE_PUBLIC_URL``."""
    return LinkMaker(purpose)(customer_id=customer_id, channel=channel, topic_key=topic_key)


class LinkMaker:
    """Links to one page for many customers: the page's URL and the signing key are
    worked out once (per batch of a broadcast, say), not for every link."""

    def __init__(self, purpose: str) -> None:
        self.url = _page_url(purpose)
        self.mac = _signer_mac(purpose, settings.SECRET_KEY)

    def __call__(
        self, *, customer_id: int, channel: str | None = None, topic_key: str | None = None
    ) -> str:
        token = _token(self.mac, customer_id=customer_id, channel=channel, topic_key=topic_key)
        return self.url.replace(_PLACEHOLDER, token, 1)


# A broadcast makes two links per email: reversing the URL each time cost as much as
# signing the token. The page's URL is reversed once (per URLconf, script prefix and
# public URL, so overridden settings are honoured) around a placeholder; a token's
# characters (URL-safe base64 and ":") are never quoted by reverse, so the result is
# what reverse(view, args=[token]) would give.
_PLACEHOLDER = "JLTOKENPLACEHOLDER"
_page_urls: dict[tuple, str] = {}


def _page_url(purpose: str) -> str:
    urlconf = get_urlconf()
    key = (purpose, settings.JOURNEYLINE_PUBLIC_URL, get_script_prefix(), get_resolver(urlconf))
    url = _page_urls.get(key)
    if url is None:
        path = reverse(_VIEW_NAMES[purpose], urlconf=urlconf, args=[_PLACEHOLDER])
        url = settings.JOURNEYLINE_PUBLIC_URL + path
        if len(_page_urls) > 64:
            _page_urls.clear()
        _page_urls[key] = url
    return url


def preferences_link(*, customer_id: int) -> str:
    return link_make(purpose=PREFERENCES, customer_id=customer_id)


def unsubscribe_headers(*, customer_id: int, topic_key: str | None) -> dict[str, str]:
    """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) for one email.

    ``topic_key`` None unsubscribes from every email topic.
    """
    url = link_make(
        purpose=UNSUBSCRIBE, customer_id=customer_id, channel="email", topic_key=topic_key
    )
    return unsubscribe_headers_for(url)


def unsubscribe_headers_for(url: str) -> dict[str, str]:
    """The RFC 8058 headers of an email whose one-click unsubscribe link is ``url``."""
    targets = [f"<{url}>"]
    if settings.CONSENT_UNSUBSCRIBE_MAILTO:
        token = url.rstrip("/").rsplit("/", 1)[-1]
        targets.append(
            f"<mailto:{settings.CONSENT_UNSUBSCRIBE_MAILTO}?subject=unsubscribe%20{token}>"
        )
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
