"""Topics: the built-in transactional one is always there."""

from consent.models import TRANSACTIONAL_KEY, Topic

TRANSACTIONAL_DEFAULTS = {
    "name": "Transactional messages",
    "description": "Receipts, password resets and confirmations: sent without opt-in, never "
    "to suppressed or erased customers.",
    "channels": ["email", "sms", "push"],
    "default": Topic.Default.OPT_OUT,
    "double_opt_in": False,
    "is_transactional": True,
}


def topic_get(*, key: str) -> Topic | None:
    """A topic by key. The transactional topic is created by a migration, and recreated
    here if a database flush (tests, a reset) removed it: sends must never depend on it."""
    if key == TRANSACTIONAL_KEY:
        topic, _ = Topic.objects.get_or_create(
            key=TRANSACTIONAL_KEY, defaults=TRANSACTIONAL_DEFAULTS
        )
        return topic
    return Topic.objects.filter(key=key).first()
