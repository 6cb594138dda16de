import pytest

from campaigns.channels import backends_reset
from tests.campaigns.servers import FakeProvider, SmtpSink


@pytest.fixture
def provider():
    server = FakeProvider().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(autouse=True)
def _fresh_backends():
    backends_reset()
    yield
    backends_reset()
