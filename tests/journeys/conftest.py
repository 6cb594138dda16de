import pytest

from journeys import ports as ports_module
from journeys.ports import ports


class RecordingOutbox:
    """An outbox of the tests' own: rows enqueued in the transaction, and dispatched keys
    seen only once the transaction commits (the runner calls ``dispatch`` on commit)."""

    def __init__(self) -> None:
        self.enqueued = []
        self.dispatched = []

    def enqueue(self, messages):
        self.enqueued.extend(messages)

    def dispatch(self, idempotency_keys):
        self.dispatched.extend(idempotency_keys)


@pytest.fixture
def outbox():
    previous = ports._outbox
    recording = RecordingOutbox()
    ports_module.register_outbox(recording)
    yield recording
    ports_module.register_outbox(previous)


@pytest.fixture
def no_outbox():
    previous = ports._outbox
    ports_module.register_outbox(None)
    yield
    ports_module.register_outbox(previous)


@pytest.fixture(autouse=True)
def _templates_of_the_tests():
    """Template ids 1 (email), 2 (push), 3 (sms), 4 (webhook) exist for every journeys test."""
    from tests.journeys.graphs import Templates

    previous = ports.templates
    ports_module.register_template_catalog(Templates())
    yield
    ports_module.register_template_catalog(previous)
