"""Email through Django's email backends, so SMTP and every django-anymail provider work.

With Django's SMTP backend the MIME message is written directly as bytes, its invariant
parts (sender, part headers, boundary) prepared once per template version and sender:
building a multipart message with the ``email`` package costs milliseconds, and a
broadcast sends hundreds of thousands. Every other backend (anymail, console, file,
locmem) gets a standard ``EmailMultiAlternatives``.
"""

import binascii
import re
import smtplib
import socket
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpEmailBackend
from django.core.mail.message import sanitize_address

from campaigns.channels.base import (
    ChannelBackend,
    Delivery,
    PermanentSendError,
    SendError,
    TransientSendError,
)

_SKELETON_CACHE_SIZE = 512
_NEWLINES = re.compile(r"\r\n?")
# A bare ASCII address (dot-atom local part): what nearly every customer's address is, and
# what sanitize_address would return unchanged after parsing it (at several times the cost).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
# Headers we write ourselves; extra headers may not replace them.
_OWN_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


@dataclass(frozen=True)
class _Skeleton:
    """What is the same in every message of one template version from one sender."""

    sender_header: bytes
    envelope_sender: str  # the bare address, for MAIL FROM
    boundary: bytes
    text_part_header: bytes
    html_part_header: bytes


def _skeleton(sender: str) -> _Skeleton:
    # Quoted-printable output never contains "=_", so this boundary cannot occur in a part.
    boundary = f"=_jl_{uuid.uuid4().hex}".encode()
    return _Skeleton(
        sender_header=b"From: " + _header_value(sanitize_address(sender, "utf-8")) + b"\r\n",
        envelope_sender=parseaddr(sanitize_address(sender, "utf-8"))[1],
        boundary=boundary,
        text_part_header=b"--" + boundary + b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        html_part_header=b"\r\n--" + boundary + b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
    )


def _check_header(name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise PermanentSendError(f"the {name} header contains a line break")


def _header_value(value: str) -> bytes:
    if value.isascii() and len(value) < 900:
        return value.encode("ascii")
    return Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n").encode("ascii")


def _quoted_printable(text: str) -> bytes:
    normalised = _NEWLINES.sub("\n", text).encode("utf-8")
    return binascii.b2a_qp(normalised, istext=True).replace(b"\n", b"\r\n")


def message_bytes(
    *,
    skeleton: _Skeleton,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    headers: dict[str, str],
) -> bytes:
    """The whole message, ready for SMTP ``DATA``."""
    _check_header("Subject", subject)
    lines = [
        skeleton.sender_header,
        b"To: ",
        _header_value(to),
        b"\r\nSubject: ",
        _header_value(subject),
        b"\r\nDate: ",
        formatdate(usegmt=True).encode("ascii"),
        b"\r\nMessage-ID: ",
        message_id.encode("ascii"),
        b"\r\nMIME-Version: 1.0\r\n",
    ]
    for name, value in headers.items():
        lines += [name.encode("ascii"), b": ", _header_value(value), b"\r\n"]
    if html:
        lines += [
            b'Content-Type: multipart/alternative; boundary="',
            skeleton.boundary,
            b'"\r\n\r\n',
            skeleton.text_part_header,
            _quoted_printable(text),
            skeleton.html_part_header,
            _quoted_printable(html),
            b"\r\n--",
            skeleton.boundary,
            b"--\r\n",
        ]
    else:
        lines += [
            b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            _quoted_printable(text),
            b"\r\n",
        ]
    return b"".join(lines)


class EmailBackend(ChannelBackend):
    """Options: ``backend`` (a Django email backend path; default ``EMAIL_BACKEND``),
    ``from_email`` (default ``DEFAULT_FROM_EMAIL``), ``message_id_domain``, and any option
    of that Django backend (host, port, …)."""

    def __init__(
        self,
        backend: str | None = None,
        from_email: str | None = None,
        message_id_domain: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.connection = get_connection(backend, fail_silently=False, **options)
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.message_id_domain = message_id_domain or _domain_of(self.from_email)
        self._skeletons: OrderedDict[tuple[Any, str], _Skeleton] = OrderedDict()
        self._lock = threading.RLock()
        self._opened = False

    # Connection --------------------------------------------------------------------
    def open(self) -> None:
        """Keep one connection for a batch of sends. A server that cannot be reached now
        is not an error here: each send then tries on its own and fails as a transient
        error of that message, to be retried with backoff."""
        with self._lock:
            try:
                self._opened = bool(self.connection.open()) or self._opened
            except (smtplib.SMTPException, OSError):
                self._opened = False

    def close(self) -> None:
        with self._lock:
            self.connection.close()
            self._opened = False

    # Sending -----------------------------------------------------------------------
    def message_id(self, delivery: Delivery) -> str:
        if delivery.reference:
            reference = re.sub(r"[^A-Za-z0-9._-]", "-", delivery.reference)
            return f"<{reference}@{self.message_id_domain}>"
        return f"<{uuid.uuid4().hex}@{self.message_id_domain}>"

    def send(self, delivery: Delivery) -> str:
        if not delivery.to:
            raise PermanentSendError("no email address")
        headers = {}
        for name, value in delivery.headers.items():
            _check_header(name, value)
            if name.lower() in _OWN_HEADERS or not re.fullmatch(r"[A-Za-z0-9-]+", name):
                raise PermanentSendError(f"the header {name!r} cannot be set")
            headers[name] = value
        message_id = self.message_id(delivery)
        sender = delivery.sender or self.from_email
        try:
            to = _sanitized(delivery.to)
        except ValueError as error:
            raise PermanentSendError(f"invalid email address: {error}") from None
        if isinstance(self.connection, SmtpEmailBackend):
            self._send_smtp(delivery, sender, to, message_id, headers)
            return message_id
        return self._send_django(delivery, sender, message_id, headers)

    def _send_smtp(
        self, delivery: Delivery, sender: str, to: str, message_id: str, headers: dict[str, str]
    ) -> None:
        rendered = delivery.message
        skeleton = self._skeleton_for(rendered.version_id, sender)
        data = message_bytes(
            skeleton=skeleton,
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            headers=headers,
        )
        with self._lock:
            try:
                opened_here = bool(self.connection.open())
                try:
                    self._sendmail(skeleton.envelope_sender, to, data)
                except smtplib.SMTPServerDisconnected:
                    # A connection kept open between sends may have been dropped by the server.
                    self.connection.close()
                    self.connection.open()
                    self._sendmail(skeleton.envelope_sender, to, data)
                finally:
                    if opened_here and not self._opened:
                        self.connection.close()
            except (smtplib.SMTPException, OSError) as error:
                raise _smtp_error(error) from error

    def _sendmail(self, sender: str, to: str, data: bytes) -> None:
        """One SMTP transaction (MAIL, RCPT, DATA), as ``smtplib.SMTP.sendmail`` with one
        recipient, without re-parsing both addresses for every message: ``sender`` is
        bare already, and ``to`` is too unless it carries a display name."""
        client = self.connection.connection
        client.ehlo_or_helo_if_needed()
        recipient = to if _PLAIN_ADDRESS.fullmatch(to) else parseaddr(to)[1]
        size = f" SIZE={len(data)}" if client.does_esmtp and client.has_extn("size") else ""
        code, reply = client.docmd("mail", f"FROM:<{sender}>{size}")
        if code != 250:
            _reset(client, code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.docmd("rcpt", f"TO:<{recipient}>")
        if code not in (250, 251):
            _reset(client, code)
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        code, reply = client.data(data)
        if code != 250:
            _reset(client, code)
            raise smtplib.SMTPDataError(code, reply)

    def _skeleton_for(self, version_id: Any, sender: str) -> _Skeleton:
        key = (version_id, sender)
        skeleton = self._skeletons.get(key)
        if skeleton is None:
            skeleton = _skeleton(sender)
            if version_id is not None:
                self._skeletons[key] = skeleton
                while len(self._skeletons) > _SKELETON_CACHE_SIZE:
                    self._skeletons.popitem(last=False)
        return skeleton

    def _send_django(
        self, delivery: Delivery, sender: str, message_id: str, headers: dict[str, str]
    ) -> str:
        rendered = delivery.message
        email = EmailMultiAlternatives(
            subject=rendered.subject,
            body=rendered.text,
            from_email=sender,
            to=[delivery.to],
            headers={**headers, "Message-ID": message_id},
            connection=self.connection,
        )
        if rendered.html:
            email.attach_alternative(rendered.html, "text/html")
        if delivery.metadata:
            # Read by django-anymail providers; ignored by other backends.
            email.metadata = dict(delivery.metadata)
        try:
            email.send()
        except (smtplib.SMTPException, OSError) as error:
            raise _smtp_error(error) from error
        except Exception as error:
            raise _provider_error(error) from error
        status = getattr(email, "anymail_status", None)
        if status is not None:
            recipient = status.recipients.get(delivery.to.lower()) or next(
                iter(status.recipients.values()), None
            )
            if recipient is not None and recipient.status in ("rejected", "invalid"):
                raise PermanentSendError(f"the provider {recipient.status} the address")
            if status.message_id:
                return str(
                    status.message_id
                    if isinstance(status.message_id, str)
                    else next(iter(status.message_id), message_id)
                )
        return message_id


def _sanitized(address: str) -> str:
    return address if _PLAIN_ADDRESS.fullmatch(address) else sanitize_address(address, "utf-8")


def _reset(client: smtplib.SMTP, code: int) -> None:
    # As smtplib does: a server that closed the connection (421) gets no RSET.
    if code == 421:
        client.close()
    else:
        client._rset()


def _domain_of(address: str) -> str:
    match = re.search(r"@([A-Za-z0-9.-]+)", address)
    return match.group(1) if match else socket.getfqdn()


def _smtp_error(error: BaseException) -> SendError:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()), (550, b""))
        return _by_smtp_code(code, f"recipient refused: {code} {_text(reply)}")
    if isinstance(error, smtplib.SMTPResponseException):
        return _by_smtp_code(error.smtp_code, f"SMTP {error.smtp_code} {_text(error.smtp_error)}")
    if isinstance(error, TimeoutError | socket.timeout):
        return TransientSendError("SMTP timeout")
    return TransientSendError(f"SMTP connection failed: {type(error).__name__}: {error}")


def _by_smtp_code(code: int, reason: str) -> SendError:
    # 4xx replies are temporary by definition (RFC 5321); authentication failures are
    # configuration problems an operator fixes, so retry those too.
    if 400 <= code < 500 or code in (530, 535):
        return TransientSendError(reason)
    return PermanentSendError(reason)


def _text(reply: Any) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _provider_error(error: Exception) -> SendError:
    """django-anymail's errors, recognised without importing it (it is optional)."""
    name = type(error).__name__
    status = getattr(error, "status_code", None)
    if name == "AnymailRecipientsRefused":
        return PermanentSendError(f"the provider refused the address: {error}")
    if isinstance(status, int):
        return (
            TransientSendError(f"email provider answered {status}")
            if status == 429 or status >= 500
            else PermanentSendError(f"email provider answered {status}: {error}")
        )
    if name.startswith("Anymail") and "Request" in name:
        return TransientSendError(f"email provider unreachable: {error}")
    return PermanentSendError(f"{name}: {error}")
