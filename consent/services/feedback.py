"""Provider feedback that changes what may be sent: hard bounces and complaints."""

from __future__ import annotations

from django.db import transaction

from consent.models import Action, AddressKind, Source, Suppression
from consent.services.ledger import ConsentError, consent_record
from consent.services.suppression import suppression_add

_KIND_OF_CHANNEL = {
    "email": AddressKind.EMAIL,
    "sms": AddressKind.PHONE,
    "push": AddressKind.PUSH_TOKEN,
}


@transaction.atomic
def consent_feedback_record(
    *, customer_id: int | None, channel: str, address: str, kind: str, note: str = ""
) -> Suppression:
    """For the sending app's webhook handlers. ``kind`` is ``hard_bounce`` or ``complaint``.

    Both suppress the address (whoever holds it). A complaint is also the customer saying
    no: it withdraws every topic of the channel in the ledger, with source ``complaint``.
    """
    if channel not in _KIND_OF_CHANNEL:
        raise ConsentError("channel", f"must be one of {', '.join(_KIND_OF_CHANNEL)}")
    if kind not in (Suppression.Reason.HARD_BOUNCE, Suppression.Reason.COMPLAINT):
        raise ConsentError("kind", "must be hard_bounce or complaint")
    suppression = suppression_add(
        kind=_KIND_OF_CHANNEL[channel],
        address=address,
        reason=kind,
        note=note,
        created_by="feedback",
    )
    if kind == Suppression.Reason.COMPLAINT and customer_id is not None:
        consent_record(
            customer_id=customer_id,
            channel=channel,
            topic_key=None,
            action=Action.WITHDRAW,
            source=Source.COMPLAINT,
            evidence={"note": note} if note else None,
        )
    return suppression
