"""Customers' own pages, reached from signed links in messages: no login, no JavaScript.

Views are thin: they read the token, call one service, render a page. A bad token (tampered,
expired, made for another page, or for a customer who no longer exists) gets a clear page
with status 400 and changes nothing.
"""

from __future__ import annotations

from contextlib import nullcontext

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from consent import sms, tokens
from consent.models import Action, ConsentState, Source, Topic
from consent.selectors import consent_overview, customer_is_erased, customer_live_id
from consent.services.ledger import consent_record
from consent.services.preferences import consent_withdraw_everything, preferences_save
from consent.services.sms import sms_keyword_handle
from customers.models import Customer

_NO_STORE = "no-store"


def _evidence(request: HttpRequest, page: str) -> dict:
    # The page is named, not copied from the URL: the URL holds the customer's token.
    return {
        "ip": request.META.get("REMOTE_ADDR", ""),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:500],
        "wording_version": settings.CONSENT_WORDING_VERSION,
        "page": page,
    }


def _page(
    request: HttpRequest, template: str, context: dict, status: int = 200, locale: str = ""
) -> HttpResponse:
    # In the customer's own language when we know it (and have a translation).
    language = translation.to_language(locale) if locale else None
    with translation.override(language) if language else nullcontext():
        response = render(request, f"consent/{template}", context, status=status)
    response["Cache-Control"] = _NO_STORE
    response["Referrer-Policy"] = "no-referrer"  # keep the token out of other sites' logs
    return response


def _bad_link(request: HttpRequest) -> HttpResponse:
    return _page(request, "bad_link.html", {}, status=400)


def _claims(request: HttpRequest, *, purpose: str, token: str) -> tokens.TokenClaims | None:
    try:
        claims = tokens.token_read(purpose=purpose, token=token)
    except tokens.BadToken:
        return None
    customer_id = customer_live_id(customer_id=claims.customer_id)
    if customer_id is None or customer_is_erased(customer_id=customer_id):
        return None
    return tokens.TokenClaims(
        customer_id=customer_id,
        channel=claims.channel,
        topic_key=claims.topic_key,
        locale=Customer.objects.filter(pk=customer_id).values_list("locale", flat=True).first()
        or "",
    )


@require_http_methods(["GET", "POST"])
@csrf_protect
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    claims = _claims(request, purpose=tokens.PREFERENCES, token=token)
    if claims is None:
        return _bad_link(request)
    saved = None
    if request.method == "POST":
        evidence = _evidence(request, "preference_centre")
        if "unsubscribe_all" in request.POST:
            consent_withdraw_everything(
                customer_id=claims.customer_id,
                source=Source.PREFERENCE_CENTRE,
                evidence=evidence,
            )
            saved = _("You are unsubscribed from everything. You can subscribe again below.")
        else:
            wanted = set()
            for name in request.POST.getlist("topic"):
                channel, _sep, key = name.partition(":")
                wanted.add((channel, key))
            preferences_save(
                customer_id=claims.customer_id,
                wanted=wanted,
                source=Source.PREFERENCE_CENTRE,
                evidence=evidence,
            )
            saved = _("Your preferences are saved.")
    overview = [
        channel for channel in consent_overview(customer_id=claims.customer_id) if channel.topics
    ]
    return _page(
        request,
        "preferences.html",
        {"channels": overview, "saved": saved},
        locale=claims.locale,
    )


@require_http_methods(["GET", "POST"])
@csrf_exempt  # RFC 8058: mail clients POST with no cookie and no form token; the signed URL is the proof
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    claims = _claims(request, purpose=tokens.UNSUBSCRIBE, token=token)
    if claims is None:
        return _bad_link(request)
    channel = claims.channel or "email"
    topic = Topic.objects.filter(key=claims.topic_key).first() if claims.topic_key else None
    if claims.topic_key and topic is None:
        return _bad_link(request)
    context = {
        "topic": topic,
        "preferences_url": tokens.link_make(
            purpose=tokens.PREFERENCES, customer_id=claims.customer_id
        ),
    }
    if request.method == "GET":
        return _page(request, "unsubscribe.html", context, locale=claims.locale)
    if request.POST.get("List-Unsubscribe") != "One-Click":
        return _page(request, "unsubscribe.html", context, status=400, locale=claims.locale)
    consent_record(
        customer_id=claims.customer_id,
        channel=channel,
        topic_key=topic.key if topic else None,
        action=Action.WITHDRAW,
        source=Source.ONE_CLICK_UNSUBSCRIBE,
        evidence=_evidence(request, "one_click_unsubscribe"),
    )
    return _page(request, "unsubscribed.html", context, locale=claims.locale)


@require_http_methods(["GET", "POST"])
@csrf_protect
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Double opt-in. The link shows a button and the button grants: mail scanners that
    open every link in a message must not confirm on the customer's behalf."""
    claims = _claims(request, purpose=tokens.CONFIRM, token=token)
    if claims is None or not claims.channel or not claims.topic_key:
        return _bad_link(request)
    topic = Topic.objects.filter(key=claims.topic_key).first()
    if topic is None:
        return _bad_link(request)
    pending = ConsentState.objects.filter(
        customer_id=claims.customer_id, channel=claims.channel, topic=topic, action=Action.PENDING
    ).exists()
    context = {"topic": topic, "pending": pending}
    if request.method == "GET" or not pending:
        return _page(request, "confirm.html", context, locale=claims.locale)
    consent_record(
        customer_id=claims.customer_id,
        channel=claims.channel,
        topic_key=topic.key,
        action=Action.GRANT,
        source=Source.DOUBLE_OPT_IN,
        evidence=_evidence(request, "double_opt_in"),
    )
    return _page(request, "confirmed.html", context, locale=claims.locale)


@require_http_methods(["POST"])
@csrf_exempt  # a provider's webhook: the X-Twilio-Signature header is the proof
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """Twilio-style inbound SMS: STOP and friends withdraw, START re-grants, HELP answers."""
    params = {name: request.POST.getlist(name) for name in request.POST}
    if not settings.TWILIO_AUTH_TOKEN:
        return HttpResponse("TWILIO_AUTH_TOKEN is not set", status=503, content_type="text/plain")
    if not sms.twilio_signature_valid(
        url=request.build_absolute_uri(),
        params=params,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        signature=request.headers.get("X-Twilio-Signature", ""),
    ):
        return HttpResponse("bad X-Twilio-Signature", status=403, content_type="text/plain")
    keyword = sms.keyword_of(request.POST.get("Body", ""))
    reply = None
    if keyword is not None:
        reply = sms_keyword_handle(
            from_number=request.POST.get("From", ""),
            keyword=keyword,
            evidence={
                "ip": request.META.get("REMOTE_ADDR", ""),
                "note": f"SMS keyword {request.POST.get('Body', '').strip()[:20]}",
                "request_id": request.POST.get("MessageSid", "")[:64] or None,
            },
        )
    return HttpResponse(sms.twiml(reply), content_type="text/xml")
