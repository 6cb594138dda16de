import urllib.parse

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels import Delivery, PermanentSendError, TransientSendError
from campaigns.channels.sms import TwilioBackend
from campaigns.rendering import RenderedMessage

SID = "AC0123456789abcdef0123456789abcdef"


def twilio(provider, **options):
    return TwilioBackend(
        account_sid=SID,
        auth_token="secret-token",
        from_number="+15550001111",
        base_url=provider.url,
        timeout=options.pop("timeout", 5),
        **options,
    )


def sms(body="Your code is 1234 🎉", to="+447700900123"):
    return Delivery(message=RenderedMessage(channel="sms", locale="en", body=body), to=to)


def test_sends_a_form_encoded_message_with_basic_auth(provider):
    provider.respond(201, json_body={"sid": "SM123", "status": "queued"})
    backend = twilio(provider, status_callback="https://j.test/twilio/status")
    assert backend.send(sms()) == "SM123"
    [request] = provider.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(request.body.decode()) == {
        "To": ["+447700900123"],
        "From": ["+15550001111"],
        "Body": ["Your code is 1234 🎉"],
        "StatusCallback": ["https://j.test/twilio/status"],
    }


def test_messaging_service_instead_of_a_number(provider):
    provider.respond(201, json_body={"sid": "SM9"})
    backend = TwilioBackend(
        account_sid=SID, auth_token="t", messaging_service_sid="MG1", base_url=provider.url
    )
    backend.send(sms())
    form = urllib.parse.parse_qs(provider.requests[0].body.decode())
    assert form["MessagingServiceSid"] == ["MG1"]
    assert "From" not in form


def test_invalid_number_is_permanent(provider):
    provider.respond(
        400, json_body={"code": 21211, "message": "The 'To' number +1 is not valid.", "status": 400}
    )
    with pytest.raises(PermanentSendError) as error:
        twilio(provider).send(sms(to="+1"))
    assert error.value.reason == "Twilio error 21211: invalid 'To' phone number"


def test_other_client_errors_are_permanent_with_the_reason(provider):
    provider.respond(400, json_body={"code": 21602, "message": "Message body is required."})
    with pytest.raises(PermanentSendError) as error:
        twilio(provider).send(sms(body=""))
    assert error.value.reason == "Twilio answered 400: error 21602: Message body is required."


def test_rate_limit_is_transient_with_retry_after(provider):
    provider.respond(
        429, json_body={"code": 20429, "message": "Too Many Requests"}, headers={"Retry-After": "7"}
    )
    with pytest.raises(TransientSendError) as error:
        twilio(provider).send(sms())
    assert error.value.retry_after == 7.0


def test_server_error_is_transient(provider):
    provider.respond(503, body=b"down")
    with pytest.raises(TransientSendError) as error:
        twilio(provider).send(sms())
    assert error.value.retry_after is None
    assert "503" in error.value.reason


def test_timeout_is_transient(provider):
    provider.respond(hang=True)
    with pytest.raises(TransientSendError) as error:
        twilio(provider, timeout=0.2).send(sms())
    provider.release()
    assert error.value.reason == "Twilio timed out"


def test_unreachable_is_transient():
    from tests.campaigns.servers import free_port

    backend = TwilioBackend(
        account_sid=SID,
        auth_token="t",
        from_number="+1555",
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(TransientSendError):
        backend.send(sms())


def test_missing_credentials_name_the_variables():
    with pytest.raises(ImproperlyConfigured, match="TWILIO_ACCOUNT_SID"):
        TwilioBackend(from_number="+1555")
