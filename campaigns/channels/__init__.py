"""Channel backends: how a rendered message reaches a provider."""

from campaigns.channels.base import (
    ChannelBackend,
    Delivery,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from campaigns.channels.registry import backends_reset, get_backend

__all__ = [
    "ChannelBackend",
    "Delivery",
    "PermanentSendError",
    "SendError",
    "TransientSendError",
    "backends_reset",
    "get_backend",
]
