"""What consent asks apps above it to do. They register in their ``AppConfig.ready()``.

``confirmation_senders``: called (after commit) when a double opt-in grant is pending::

    from consent.hooks import confirmation_senders
    confirmation_senders.register("campaigns", send_confirmation)

    def send_confirmation(*, customer_id: int, channel: str, topic_key: str, confirm_url: str):
        ...  # queue a transactional message carrying confirm_url

``privacy_exporters`` / ``privacy_erasers``: each app's part of a customer's export and
erasure::

    privacy_exporters.register("messages", lambda *, customer_id: [...])  # JSON-able
    privacy_erasers.register("messages", lambda *, customer_id: 12)  # rows changed
"""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Registry:
    def __init__(self, name: str) -> None:
        self.name = name
        self._hooks: dict[str, Callable] = {}

    def register(self, name: str, hook: Callable) -> None:
        self._hooks[name] = hook

    def unregister(self, name: str) -> None:
        self._hooks.pop(name, None)

    def items(self) -> list[tuple[str, Callable]]:
        return list(self._hooks.items())

    def __bool__(self) -> bool:
        return bool(self._hooks)


confirmation_senders = Registry("confirmation_senders")
privacy_exporters = Registry("privacy_exporters")
privacy_erasers = Registry("privacy_erasers")


def confirmation_request(
    *, customer_id: int, channel: str, topic_key: str, confirm_url: str
) -> None:
    if not confirmation_senders:
        logger.warning(
            "double opt-in pending but no confirmation sender is registered",
            extra={"customer_id": customer_id, "channel": channel, "topic": topic_key},
        )
        return
    for _, sender in confirmation_senders.items():
        sender(
            customer_id=customer_id, channel=channel, topic_key=topic_key, confirm_url=confirm_url
        )
