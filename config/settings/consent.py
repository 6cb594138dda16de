"""Consent: quiet hours, frequency caps, links in messages, SMS keywords, retention."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_int, env_str
from config.settings.base import DEBUG, SECRET_KEY

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _quiet_hours(name: str, default: str) -> tuple[str, str] | None:
    """``21:00-08:00`` (local time, may wrap midnight); empty for none."""
    value = (env_str(name, default) or "").strip()
    if not value:
        return None
    start, _, end = value.partition("-")
    for part in (start, end):
        hours, _, minutes = part.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ImproperlyConfigured(f"{name} must look like 21:00-08:00, not {value!r}")
    if start == end:
        raise ImproperlyConfigured(f"{name} must not start and end at the same time")
    return (start, end)


def _cap(name: str, default: str) -> tuple[int, int] | None:
    """``3/1d``: at most 3 messages in any rolling day; empty for no cap."""
    value = (env_str(name, default) or "").strip()
    if not value:
        return None
    count, _, window = value.partition("/")
    unit = window[-1:]
    if not (count.isdigit() and window[:-1].isdigit() and unit in _UNITS and int(window[:-1])):
        raise ImproperlyConfigured(f"{name} must look like 3/1d (count/window in s, m, h or d)")
    return (int(count), int(window[:-1]) * _UNITS[unit])


# The public address customers reach their pages at (links in messages are built on it).
JOURNEYLINE_PUBLIC_URL = (
    env_str("JOURNEYLINE_PUBLIC_URL", "http://localhost:8000" if DEBUG else "") or ""
).rstrip("/")

CONSENT_QUIET_HOURS = {
    channel: hours
    for channel, hours in {
        "email": _quiet_hours("CONSENT_QUIET_HOURS_EMAIL", ""),
        "sms": _quiet_hours("CONSENT_QUIET_HOURS_SMS", "21:00-08:00"),
        "push": _quiet_hours("CONSENT_QUIET_HOURS_PUSH", "22:00-08:00"),
    }.items()
    if hours
}
# Per channel and across all channels ("all"): (messages, rolling window in seconds).
CONSENT_FREQUENCY_CAPS = {
    channel: cap
    for channel, cap in {
        "email": _cap("CONSENT_CAP_EMAIL", "3/1d"),
        "sms": _cap("CONSENT_CAP_SMS", "2/1d"),
        "push": _cap("CONSENT_CAP_PUSH", "4/1d"),
        "all": _cap("CONSENT_CAP_ALL", "6/1d"),
    }.items()
    if cap
}

# How long links in messages stay valid, in days.
CONSENT_PREFERENCES_LINK_DAYS = env_int("CONSENT_PREFERENCES_LINK_DAYS", 60)
CONSENT_UNSUBSCRIBE_LINK_DAYS = env_int("CONSENT_UNSUBSCRIBE_LINK_DAYS", 90)
CONSENT_CONFIRMATION_LINK_DAYS = env_int("CONSENT_CONFIRMATION_LINK_DAYS", 7)
# The mailbox of the mailto: List-Unsubscribe form; empty leaves it out.
CONSENT_UNSUBSCRIBE_MAILTO = env_str("CONSENT_UNSUBSCRIBE_MAILTO", "") or ""
# The version of the wording customers saw on the preference centre (kept as evidence).
CONSENT_WORDING_VERSION = env_str("CONSENT_WORDING_VERSION", "preferences-2026-1")

# Suppressed addresses are matched by keyed hash; erased ones are kept only as that hash.
CONSENT_SUPPRESSION_HASH_KEY = env_str("CONSENT_SUPPRESSION_HASH_KEY") or SECRET_KEY

TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "") or ""
CONSENT_SMS_HELP_TEXT = env_str(
    "CONSENT_SMS_HELP_TEXT",
    "Journeyline messages. Reply STOP to unsubscribe, START to resubscribe.",
)

# Customer events older than this are deleted by a beat task; 0 keeps them forever.
CONSENT_EVENT_RETENTION_DAYS = env_int("CONSENT_EVENT_RETENTION_DAYS", 730)
