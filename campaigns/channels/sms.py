"""SMS through Twilio's REST API (``POST /2010-04-01/Accounts/{sid}/Messages.json``)."""

from typing import Any

import httpx
from django.core.exceptions import ImproperlyConfigured

from campaigns.channels.base import (
    ChannelBackend,
    Delivery,
    PermanentSendError,
    TransientSendError,
    http_status_error,
)

# Twilio error codes that will never succeed for this number or body.
# https://www.twilio.com/docs/api/errors
PERMANENT_TWILIO_CODES = {
    21211: "invalid 'To' phone number",
    21214: "'To' phone number cannot be reached",
    21408: "permission to send to this region is not enabled",
    21610: "the recipient replied STOP (unsubscribed)",
    21612: "the 'To' number cannot receive from this number",
    21614: "'To' number is not a valid mobile number",
    21617: "the body exceeds 1600 characters",
}


class TwilioBackend(ChannelBackend):
    def __init__(
        self,
        account_sid: str = "",
        auth_token: str = "",
        from_number: str = "",
        messaging_service_sid: str = "",
        status_callback: str = "",
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not account_sid or not auth_token:
            raise ImproperlyConfigured(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to send SMS with Twilio"
            )
        if not from_number and not messaging_service_sid:
            raise ImproperlyConfigured(
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID must be set to send SMS"
            )
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.client = httpx.Client(
            base_url=base_url, auth=(account_sid, auth_token), timeout=timeout
        )

    def close(self) -> None:
        # The client pools connections for the life of the backend; nothing to do per batch.
        pass

    def send(self, delivery: Delivery) -> str:
        if not delivery.to:
            raise PermanentSendError("no phone number")
        form = {"To": delivery.to, "Body": delivery.message.body}
        if delivery.sender or self.from_number:
            form["From"] = delivery.sender or self.from_number
        if self.messaging_service_sid and not delivery.sender:
            form["MessagingServiceSid"] = self.messaging_service_sid
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        try:
            response = self.client.post(
                f"/2010-04-01/Accounts/{self.account_sid}/Messages.json", data=form
            )
        except httpx.TimeoutException:
            raise TransientSendError("Twilio timed out") from None
        except httpx.TransportError as error:
            raise TransientSendError(f"Twilio unreachable: {type(error).__name__}") from None
        payload = _json(response)
        if response.status_code in (200, 201):
            sid = payload.get("sid")
            if not sid:
                raise TransientSendError("Twilio accepted the message but returned no sid")
            return str(sid)
        code = payload.get("code")
        detail = str(payload.get("message") or response.reason_phrase)
        if code in PERMANENT_TWILIO_CODES:
            raise PermanentSendError(f"Twilio error {code}: {PERMANENT_TWILIO_CODES[code]}")
        if code:
            detail = f"error {code}: {detail}"
        raise http_status_error(
            provider="Twilio",
            status=response.status_code,
            detail=detail,
            retry_after=response.headers.get("Retry-After"),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
