"""Which backend sends each channel: ``JOURNEYLINE_CHANNEL_BACKENDS`` in settings.

JOURNEYLINE_CHANNEL_BACKENDS = {
    "sms": {"BACKEND": "campaigns.channels.sms.TwilioBackend", "OPTIONS": {...}},
    ...
}
"""

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from campaigns.channels.base import ChannelBackend

# Short names operators can use in the environment instead of dotted paths.
ALIASES = {
    "console": "campaigns.channels.development.ConsoleBackend",
    "file": "campaigns.channels.development.FileBackend",
    "email": "campaigns.channels.email.EmailBackend",
    "twilio": "campaigns.channels.sms.TwilioBackend",
    "fcm": "campaigns.channels.push.FcmBackend",
    "webpush": "campaigns.channels.push.WebPushBackend",
    "push": "campaigns.channels.push.PushBackend",
    "webhook": "campaigns.channels.webhook.WebhookBackend",
}

_backends: dict[str, ChannelBackend] = {}
_lock = threading.Lock()


def backend_create(channel: str, config: dict[str, Any]) -> ChannelBackend:
    path = config.get("BACKEND") or ""
    path = ALIASES.get(path, path)
    try:
        backend_class = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(f"the {channel} channel backend {path!r}: {error}") from None
    backend = backend_class(**(config.get("OPTIONS") or {}))
    backend.channel = channel
    return backend


def get_backend(channel: str) -> ChannelBackend:
    """The backend configured for ``channel``, created once per process."""
    backend = _backends.get(channel)
    if backend is not None:
        return backend
    configs = getattr(settings, "JOURNEYLINE_CHANNEL_BACKENDS", {})
    if channel not in configs:
        raise ImproperlyConfigured(f"no backend configured for the {channel} channel")
    with _lock:
        backend = _backends.get(channel)
        if backend is None:
            backend = _backends[channel] = backend_create(channel, configs[channel])
    return backend


def backends_reset() -> None:
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("JOURNEYLINE_CHANNEL_BACKENDS", "EMAIL_BACKEND"):
        backends_reset()


setting_changed.connect(_on_setting_changed)
