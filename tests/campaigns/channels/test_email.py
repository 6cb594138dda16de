import email
import email.policy

import pytest
from django.core import mail
from django.test import override_settings

from campaigns.channels import Delivery, PermanentSendError, TransientSendError, get_backend
from campaigns.channels.email import EmailBackend
from campaigns.rendering import RenderedMessage

UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://j.test/u/tok>, <mailto:unsub@j.test?subject=tok>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def smtp_backend(sink, **options):
    return EmailBackend(
        backend="django.core.mail.backends.smtp.EmailBackend",
        host="127.0.0.1",
        port=sink.port,
        from_email="Journeyline Shop <shop@journeyline.test>",
        **options,
    )


def an_email(**overrides):
    message = RenderedMessage(
        channel="email",
        locale="fr",
        version_id=42,
        subject="Votre commande est partie — Zoë 🚚",
        html="<html><body><p>Bonjour Zoë,</p>\n<p>"
        + "long line " * 30
        + "</p>\n.dot</body></html>",
        text="Bonjour Zoë,\n\n" + "long line " * 30 + "\n.dot",
    )
    for name, value in overrides.items():
        setattr(message, name, value)
    return message


def parse(envelope):
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def test_multipart_email_reaches_a_real_smtp_server(smtp_sink):
    # given an email backend pointed at a local SMTP server
    backend = smtp_backend(smtp_sink)
    # when a message is sent with the unsubscribe headers
    message_id = backend.send(
        Delivery(
            message=an_email(),
            to="Zoë Martin <zoe@example.com>",
            reference="msg-1",
            headers=UNSUBSCRIBE,
        )
    )
    # then exactly one message arrives, with both parts and the headers
    assert message_id == "<msg-1@journeyline.test>"
    [envelope] = smtp_sink.envelopes
    assert envelope.mail_from == "shop@journeyline.test"
    assert envelope.rcpt_tos == ["zoe@example.com"]
    received = parse(envelope)
    assert received["Message-ID"] == "<msg-1@journeyline.test>"
    assert received["Subject"] == "Votre commande est partie — Zoë 🚚"
    assert received["From"] == "Journeyline Shop <shop@journeyline.test>"
    assert received["To"] == "Zoë Martin <zoe@example.com>"
    assert received["List-Unsubscribe"] == UNSUBSCRIBE["List-Unsubscribe"]
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["MIME-Version"] == "1.0"
    assert received["Date"] is not None
    assert received.get_content_type() == "multipart/alternative"
    text_part, html_part = received.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text_part.get_content().replace("\r\n", "\n") == an_email().text
    assert html_part.get_content().replace("\r\n", "\n") == an_email().html
    assert not received.defects
    assert all(len(line) <= 998 for line in envelope.content.split(b"\r\n"))


def test_one_connection_for_many_messages(smtp_sink):
    backend = smtp_backend(smtp_sink)
    with backend:
        for number in range(3):
            backend.send(
                Delivery(message=an_email(), to=f"p{number}@example.com", reference=f"m{number}")
            )
    assert [e.rcpt_tos for e in smtp_sink.envelopes] == [
        ["p0@example.com"],
        ["p1@example.com"],
        ["p2@example.com"],
    ]
    assert len({parse(e)["Message-ID"] for e in smtp_sink.envelopes}) == 3


def test_a_refused_recipient_leaves_the_connection_ready_for_the_next_message(smtp_sink):
    # given one open connection, and a server that refuses one address of three
    smtp_sink.handler.refuse["gone@example.com"] = "550 5.1.1 No such user"
    backend = smtp_backend(smtp_sink)
    outcomes = []
    # when three messages go through it, one with a display name
    with backend:
        for to in ("a@example.com", "gone@example.com", "Bé Li <b@example.com>"):
            try:
                backend.send(Delivery(message=an_email(), to=to, reference=to))
                outcomes.append("sent")
            except PermanentSendError:
                outcomes.append("refused")
    # then the refused one fails alone and the others arrive, addressed to bare addresses
    assert outcomes == ["sent", "refused", "sent"]
    assert [e.rcpt_tos for e in smtp_sink.envelopes] == [["a@example.com"], ["b@example.com"]]
    assert [e.mail_from for e in smtp_sink.envelopes] == ["shop@journeyline.test"] * 2
    assert parse(smtp_sink.envelopes[1])["To"] == "Bé Li <b@example.com>"


def test_text_only_email(smtp_sink):
    smtp_backend(smtp_sink).send(Delivery(message=an_email(html=""), to="a@example.com"))
    received = parse(smtp_sink.envelopes[0])
    assert received.get_content_type() == "text/plain"
    assert received.get_content().startswith("Bonjour Zoë")


def test_a_refused_recipient_is_permanent(smtp_sink):
    smtp_sink.handler.refuse["gone@example.com"] = "550 5.1.1 No such user"
    with pytest.raises(PermanentSendError) as error:
        smtp_backend(smtp_sink).send(Delivery(message=an_email(), to="gone@example.com"))
    assert error.value.reason == "recipient refused: 550 5.1.1 No such user"
    assert smtp_sink.envelopes == []


def test_a_greylisted_recipient_is_transient(smtp_sink):
    smtp_sink.handler.refuse["later@example.com"] = "451 4.7.1 Try again later"
    with pytest.raises(TransientSendError):
        smtp_backend(smtp_sink).send(Delivery(message=an_email(), to="later@example.com"))


def test_no_server_is_transient():
    from tests.campaigns.servers import free_port

    backend = EmailBackend(
        backend="django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=free_port()
    )
    with pytest.raises(TransientSendError):
        backend.send(Delivery(message=an_email(), to="a@example.com"))


def test_no_server_when_a_batch_opens_is_transient_per_message_not_a_crash():
    from tests.campaigns.servers import free_port

    backend = EmailBackend(
        backend="django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=free_port()
    )
    backend.open()  # dispatch opens one connection per batch: nothing to connect to
    with pytest.raises(TransientSendError):
        backend.send(Delivery(message=an_email(), to="a@example.com"))
    backend.close()


@pytest.mark.parametrize(
    "headers",
    [{"Subject": "x"}, {"X-Evil": "a\r\nBcc: victim@example.com"}, {"Bad Name": "x"}],
)
def test_headers_cannot_inject_or_replace_ours(smtp_sink, headers):
    with pytest.raises(PermanentSendError):
        smtp_backend(smtp_sink).send(
            Delivery(message=an_email(), to="a@example.com", headers=headers)
        )
    assert smtp_sink.envelopes == []


def test_a_subject_with_a_line_break_is_refused(smtp_sink):
    with pytest.raises(PermanentSendError):
        smtp_backend(smtp_sink).send(
            Delivery(message=an_email(subject="Hi\nBcc: x@example.com"), to="a@example.com")
        )
    assert smtp_sink.envelopes == []


def test_other_django_backends_get_a_standard_message(settings):
    # pytest-django's locmem backend stands in for django-anymail and the console backend
    backend = get_backend("email")
    message_id = backend.send(
        Delivery(message=an_email(), to="zoe@example.com", reference="msg-9", headers=UNSUBSCRIBE)
    )
    [sent] = mail.outbox
    assert message_id.startswith("<msg-9@")
    assert sent.extra_headers["Message-ID"] == message_id
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.body == an_email().text
    assert sent.alternatives[0][0] == an_email().html
    assert sent.to == ["zoe@example.com"]


def test_the_registry_uses_django_email_settings(smtp_sink):
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_sink.port,
    ):
        get_backend("email").send(Delivery(message=an_email(), to="a@example.com", reference="r"))
    assert len(smtp_sink.envelopes) == 1
