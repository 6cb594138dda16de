"""What every channel backend implements, and the errors it raises."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from campaigns.rendering import RenderedMessage


@dataclass
class Delivery:
    """One rendered message on its way to one address.

    ``to`` is an email address, an E.164 phone number, a push token (or a Web Push
    subscription as JSON) — unused for webhooks, whose address is in the template.
    ``reference`` is our id for the message: it makes the email Message-ID and the
    webhook delivery id, so a retry of the same message carries the same ids.
    ``headers`` are extra email headers (the RFC 8058 unsubscribe headers, say).
    """

    message: RenderedMessage
    to: str = ""
    reference: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    platform: str = ""
    sender: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return self.message.channel


class SendError(Exception):
    """A send that did not happen, with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    """Worth another try later: a timeout, a 5xx, a 429 (with ``retry_after`` seconds)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Another try would fail the same way: a refused address, a malformed request."""


class ChannelBackend:
    """Sends deliveries of one channel. Subclasses implement ``send``.

    A backend may hold a connection; use it as a context manager (or call ``open`` and
    ``close``) to send many messages over one connection.
    """

    channel: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def send(self, delivery: Delivery) -> str:
        """Send; return the provider's message id or raise a ``SendError``."""
        raise NotImplementedError

    def open(self) -> None:
        """Open a connection to be reused by the sends that follow."""

    def close(self) -> None:
        """Close what ``open`` opened."""

    def __enter__(self) -> "ChannelBackend":
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """A Retry-After header: seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - (now or dt.datetime.now(tz=dt.UTC))).total_seconds(), 0.0)


def http_status_error(
    *, provider: str, status: int, detail: str, retry_after: str | None = None
) -> SendError:
    """The error for a provider's HTTP answer: 429 and 5xx are transient, the rest permanent."""
    reason = f"{provider} answered {status}: {detail}".strip().rstrip(":")
    if status == 429 or status >= 500:
        return TransientSendError(reason, retry_after=retry_after_seconds(retry_after))
    if status == 408:
        return TransientSendError(reason)
    return PermanentSendError(reason)
