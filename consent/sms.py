"""Inbound SMS keywords (Twilio-style webhook): signature check and keyword parsing.

Both are pure functions; ``consent.services.sms`` records what a keyword means.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

STOP, START, HELP = "stop", "start", "help"


def twilio_signature(*, url: str, params: Mapping[str, Sequence[str]], auth_token: str) -> str:
    """Twilio's documented scheme: the full URL, then each POST parameter's name and value
    (sorted by name, then value) with no separators, HMAC-SHA1 with the auth token, base64."""
    payload = url + "".join(
        name + value for name in sorted(params) for value in sorted(params[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    *, url: str, params: Mapping[str, Sequence[str]], auth_token: str, signature: str
) -> bool:
    if not auth_token or not signature:
        return False
    expected = twilio_signature(url=url, params=params, auth_token=auth_token)
    return hmac.compare_digest(expected, signature)


def keyword_of(body: str) -> str | None:
    """Carriers match the whole message, trimmed, in any case: "stop" and " Stop. " stop,
    "please don't stop" does not."""
    word = body.strip().rstrip(".!").strip().upper()
    if word in STOP_WORDS:
        return STOP
    if word in START_WORDS:
        return START
    if word in HELP_WORDS:
        return HELP
    return None


def twiml(message: str | None) -> str:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
