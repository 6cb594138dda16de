import datetime as dt

import pytest

from consent.hooks import confirmation_senders

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent_confirmations():
    """A confirmation sender of the test's own: collects what would be sent."""
    sent: list[dict] = []

    def sender(**kwargs):
        sent.append(kwargs)

    confirmation_senders.register("test", sender)
    yield sent
    confirmation_senders.unregister("test")
