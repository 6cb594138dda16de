"""The journeys' part of a customer's export and erasure (consent.hooks registries)."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from journeys.models import Enrolment, EnrolmentTransition

_RUNNING = ("active", "waiting")


def enrolments_export(*, customer_id: int) -> list[dict]:
    enrolments = (
        Enrolment.objects.filter(customer_id=customer_id)
        .select_related("journey")
        .prefetch_related("transitions")
        .order_by("entered_at", "pk")
    )
    return [
        {
            "journey": enrolment.journey.name,
            "status": enrolment.status,
            "current_step": enrolment.current_step,
            "trigger_payload": enrolment.trigger_payload,
            "entered_at": enrolment.entered_at.isoformat(),
            "finished_at": enrolment.finished_at.isoformat() if enrolment.finished_at else None,
            "transitions": [
                {
                    "from": t.from_step,
                    "to": t.to_step,
                    "reason": t.reason,
                    "at": t.created_at.isoformat(),
                }
                for t in enrolment.transitions.all()
            ],
        }
        for enrolment in enrolments
    ]


@transaction.atomic
def enrolments_erase(*, customer_id: int) -> int:
    """Drop the payloads an erased customer's enrolments carry and end the running ones:
    nothing may be sent to them any more, so no wait should wake them."""
    enrolments = Enrolment.objects.filter(customer_id=customer_id)
    EnrolmentTransition.objects.filter(enrolment__customer_id=customer_id).update(data={})
    enrolments.filter(Q(status__in=_RUNNING)).update(
        status="exited", wake_at=None, awaited_event="", finished_at=timezone.now()
    )
    return enrolments.update(trigger_payload={}, state={})
