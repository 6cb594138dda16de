import io
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels import Delivery, get_backend
from campaigns.channels.development import ConsoleBackend, FileBackend
from campaigns.channels.sms import TwilioBackend
from campaigns.rendering import RenderedMessage


def sms():
    return Delivery(message=RenderedMessage(channel="sms", locale="en", body="Hi"), to="+15550001")


def test_backends_are_chosen_by_settings(settings, provider):
    settings.JOURNEYLINE_CHANNEL_BACKENDS = {
        "sms": {
            "BACKEND": "twilio",
            "OPTIONS": {
                "account_sid": "AC1",
                "auth_token": "t",
                "from_number": "+1",
                "base_url": provider.url,
            },
        },
        "push": {"BACKEND": "campaigns.channels.development.ConsoleBackend"},
    }
    assert isinstance(get_backend("sms"), TwilioBackend)
    assert get_backend("sms") is get_backend("sms")
    assert isinstance(get_backend("push"), ConsoleBackend)


def test_an_unconfigured_channel_is_a_clear_error(settings):
    settings.JOURNEYLINE_CHANNEL_BACKENDS = {}
    with pytest.raises(ImproperlyConfigured, match="no backend configured for the sms channel"):
        get_backend("sms")


def test_an_unknown_backend_is_a_clear_error(settings):
    settings.JOURNEYLINE_CHANNEL_BACKENDS = {"sms": {"BACKEND": "campaigns.nope.Backend"}}
    with pytest.raises(ImproperlyConfigured, match=r"campaigns\.nope\.Backend"):
        get_backend("sms")


def test_console_backend_writes_the_message():
    stream = io.StringIO()
    message_id = ConsoleBackend(stream=stream).send(sms())
    assert message_id.startswith("console-")
    written = json.loads(stream.getvalue().split("\n" + "-" * 79)[0])
    assert written["to"] == "+15550001"
    assert written["message"]["body"] == "Hi"


def test_file_backend_writes_one_file_per_message(tmp_path):
    backend = FileBackend(directory=str(tmp_path))
    first, second = backend.send(sms()), backend.send(sms())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{first}.json", f"{second}.json"])
