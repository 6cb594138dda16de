"""Provider callbacks. Views are thin: check the caller, call one service."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.services.feedback import twilio_status_record
from consent.sms import twilio_signature_valid


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback for messages we sent (the ``StatusCallback`` URL)."""
    if not settings.TWILIO_AUTH_TOKEN:
        return HttpResponse("TWILIO_AUTH_TOKEN is not set", status=503, content_type="text/plain")
    params = {name: request.POST.getlist(name) for name in request.POST}
    if not twilio_signature_valid(
        url=request.build_absolute_uri(),
        params=params,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        signature=request.headers.get("X-Twilio-Signature", ""),
    ):
        return HttpResponse("bad X-Twilio-Signature", status=403, content_type="text/plain")
    if not request.POST.get("MessageSid") or not request.POST.get("MessageStatus"):
        return HttpResponse(
            "MessageSid and MessageStatus are required", status=400, content_type="text/plain"
        )
    twilio_status_record(params={name: request.POST.get(name, "") for name in request.POST})
    return HttpResponse(status=204)
