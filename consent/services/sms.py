"""What an inbound SMS keyword does to consent."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from consent.models import Action, AddressKind, Source, Suppression
from consent.services.ledger import consent_record
from consent.services.suppression import address_hash, suppression_add
from consent.sms import HELP, START, STOP
from customers.ingest.messages import normalise_phone
from customers.models import Customer

_SUPPRESSED_BY = "sms_keyword"


def _number_suppression(*, phone: str, keyword: str, known: bool) -> None:
    """STOP from a number no customer has yet still stops it: a profile imported later with
    that number must not be texted. START lifts only that suppression (never a bounce's)."""
    if keyword == STOP and not known:
        suppression_add(
            kind=AddressKind.PHONE,
            address=phone,
            reason=Suppression.Reason.MANUAL,
            note="STOP from a number no customer had",
            created_by=_SUPPRESSED_BY,
        )
    elif keyword == START:
        Suppression.objects.filter(
            kind=AddressKind.PHONE,
            address_hash=address_hash(kind=AddressKind.PHONE, address=phone),
            created_by=_SUPPRESSED_BY,
        ).delete()


@transaction.atomic
def sms_keyword_handle(*, from_number: str, keyword: str, evidence: dict) -> str:
    """Record STOP (withdraw every SMS topic) or START (lift that withdrawal) for every
    customer with this number; return the reply text."""
    if keyword == HELP:
        return settings.CONSENT_SMS_HELP_TEXT
    try:
        phone = normalise_phone(from_number)
    except ValidationError:
        phone = None
    customer_ids = (
        list(Customer.objects.filter(phone=phone).values_list("pk", flat=True)) if phone else []
    )
    if phone:
        _number_suppression(phone=phone, keyword=keyword, known=bool(customer_ids))
    action = Action.WITHDRAW if keyword == STOP else Action.GRANT
    for customer_id in customer_ids:
        consent_record(
            customer_id=customer_id,
            channel="sms",
            topic_key=None,
            action=action,
            source=Source.SMS_KEYWORD,
            evidence=evidence,
        )
    if keyword == START:
        return _("You are subscribed to our text messages again. Reply STOP to unsubscribe.")
    return _(
        "You are unsubscribed and will receive no more text messages. Reply START to resubscribe."
    )
