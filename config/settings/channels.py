"""Channel backends for messages. Console backends unless configured (see campaigns.channels).

Each ``*_BACKEND`` variable takes a short name (console, file, twilio, push, fcm, webpush,
webhook) or a dotted path.
"""

from config.env import env_bool, env_int, env_str
from config.settings.base import DEBUG

TWILIO_OPTIONS = {
    "account_sid": env_str("TWILIO_ACCOUNT_SID", ""),
    "auth_token": env_str("TWILIO_AUTH_TOKEN", ""),
    "from_number": env_str("TWILIO_FROM_NUMBER", ""),
    "messaging_service_sid": env_str("TWILIO_MESSAGING_SERVICE_SID", ""),
    "status_callback": env_str("TWILIO_STATUS_CALLBACK_URL", ""),
    "base_url": env_str("TWILIO_BASE_URL", "https://api.twilio.com"),
    "timeout": env_int("TWILIO_TIMEOUT", 10),
}
_FCM_OPTIONS = {
    "service_account_file": env_str("FCM_SERVICE_ACCOUNT_FILE", ""),
    "project_id": env_str("FCM_PROJECT_ID", ""),
    "base_url": env_str("FCM_BASE_URL", "https://fcm.googleapis.com"),
    "timeout": env_int("FCM_TIMEOUT", 10),
}
_WEBPUSH_OPTIONS = {
    "vapid_private_key": env_str("WEBPUSH_VAPID_PRIVATE_KEY", ""),
    "vapid_subject": env_str("WEBPUSH_VAPID_SUBJECT", ""),
    "timeout": env_int("WEBPUSH_TIMEOUT", 10),
}


def _channel(variable: str, default: str, options: dict) -> dict:
    backend = env_str(variable, default)
    # Development backends take no provider options.
    return {"BACKEND": backend, "OPTIONS": {} if backend in ("console", "file") else options}


_push_backend = env_str("PUSH_BACKEND", "console")
if _push_backend in ("console", "file"):
    _push_options = {}
elif _push_backend == "fcm":
    _push_options = _FCM_OPTIONS
elif _push_backend == "webpush":
    _push_options = _WEBPUSH_OPTIONS
else:  # both, chosen per device platform
    _push_options = {
        "fcm": _FCM_OPTIONS if _FCM_OPTIONS["service_account_file"] else None,
        "webpush": _WEBPUSH_OPTIONS if _WEBPUSH_OPTIONS["vapid_private_key"] else None,
    }

JOURNEYLINE_CHANNEL_BACKENDS = {
    # Email goes through Django's EMAIL_BACKEND (SMTP, django-anymail, console, file).
    "email": {
        "BACKEND": "email",
        "OPTIONS": {"message_id_domain": env_str("EMAIL_MESSAGE_ID_DOMAIN", "") or None},
    },
    "sms": _channel("SMS_BACKEND", "console", TWILIO_OPTIONS),
    "push": {"BACKEND": _push_backend, "OPTIONS": _push_options},
    "webhook": _channel(
        "WEBHOOK_BACKEND",
        "webhook",
        {
            "secret": env_str(
                "WEBHOOK_SIGNING_SECRET", "journeyline-development-webhook-secret" if DEBUG else ""
            ),
            "timeout": env_int("WEBHOOK_TIMEOUT", 10),
            "allow_private_addresses": env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=DEBUG),
        },
    ),
}

# The outbox and dispatch (campaigns.services.dispatch).
# Messages per dispatch task: a broadcast gives each task this many recipients.
DISPATCH_BATCH_SIZE = env_int("DISPATCH_BATCH_SIZE", 200, minimum=1)
# Messages per dispatch task for journey steps: a customer waits for the messages ahead of
# theirs in the same task, so journeys hand out small tasks the workers share at once.
JOURNEYS_DISPATCH_BATCH_SIZE = env_int("JOURNEYS_DISPATCH_BATCH_SIZE", 20, minimum=1)
# A queued message no task has claimed after this long is enqueued again by the tick.
DISPATCH_SWEEP_AFTER_SECONDS = env_int("DISPATCH_SWEEP_AFTER_SECONDS", 120)
# A message left "sending" this long (a worker killed mid-send) is failed, never resent:
# the provider may already have it, and a duplicate is worse than a miss.
DISPATCH_SENDING_TIMEOUT_SECONDS = env_int("DISPATCH_SENDING_TIMEOUT_SECONDS", 900)
# Transient provider errors: attempts in all, and the exponential backoff between them.
DISPATCH_MAX_ATTEMPTS = env_int("DISPATCH_MAX_ATTEMPTS", 6)
DISPATCH_RETRY_BASE_SECONDS = env_int("DISPATCH_RETRY_BASE_SECONDS", 30)
DISPATCH_RETRY_MAX_SECONDS = env_int("DISPATCH_RETRY_MAX_SECONDS", 3600)
DISPATCH_TICK_SECONDS = env_int("DISPATCH_TICK_SECONDS", 5)
# SMTP connections a dispatch task sends a batch of emails over at once (each in its own
# thread): the round trips of one wait while another's go. Lower it for a provider that
# limits concurrent connections.
DISPATCH_EMAIL_CONNECTIONS = env_int("DISPATCH_EMAIL_CONNECTIONS", 4, minimum=1)

# Broadcasts: an A/B test's winner waits for test messages still queued, deferred or
# sending (a throttled or local-time test), at most this many hours past the test window
# counted from the start; then it is picked on what was sent.
CAMPAIGN_WINNER_MAX_WAIT_HOURS = env_int("CAMPAIGN_WINNER_MAX_WAIT_HOURS", 48)
# A broadcast sent now writes its audience this many customers at a time, each chunk
# committed and dispatched while the next is written.
CAMPAIGN_SNAPSHOT_CHUNK = env_int("CAMPAIGN_SNAPSHOT_CHUNK", 10_000, minimum=1)


def _send_rate(channel: str) -> tuple[float, int] | None:
    """``<CHANNEL>_SEND_RATE=50/s`` (or /m, /h): a token bucket per channel, shared by all
    workers through Redis; the burst is one second's worth (at least 1). Empty: no limit."""
    name = f"{channel.upper()}_SEND_RATE"
    value = (env_str(name, "") or "").strip()
    if not value:
        return None
    count, _, unit = value.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600}.get(unit)
    if not count.isdigit() or not int(count) or seconds is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{name} must look like 50/s (count per s, m or h)")
    rate = int(count) / seconds
    return (rate, max(1, int(rate)))


# channel -> (tokens per second, burst)
DISPATCH_RATE_LIMITS = {
    channel: limit
    for channel in ("email", "sms", "push", "webhook")
    if (limit := _send_rate(channel)) is not None
}
DISPATCH_RATE_LIMIT_PREFIX = env_str("DISPATCH_RATE_LIMIT_PREFIX", "journeyline:rate")
